"""The triplet and siamese classroom: train small face models on the CPU in minutes, on LFW crops.

Three things are compared on the same held-out pairs of people the models never saw:

* the **triplet model**: a small CNN whose L2-normalised output is trained with triplet loss, batch-all
  or semi-hard mining (:mod:`~facecore.classroom.triplets` explains both), on batches of P people x K images;
* the **twin network**: the same kind of encoder shared by two inputs, the L1 distance of the two
  embeddings, a dense layer with a sigmoid, trained as a same/different classifier (binary cross-entropy);
* **GaussianNB on raw pixels** of both crops, the baseline that knows nothing about faces.

Modules, along the way a model is made:

* :mod:`~facecore.classroom.triplets`: triplet loss, easy/semi-hard/hard triplets and mining, in numpy;
* :mod:`~facecore.classroom.data`: LFW face crops, the split by person, the fixed held-out pairs;
* :mod:`~facecore.classroom.models`: the encoder, the twin network, the export for pipeline chips, saving;
* :mod:`~facecore.classroom.losses`: the triplet losses as Keras losses, and the numpy yardstick;
* :mod:`~facecore.classroom.training`: the batches and the training loops with a report per epoch;
* :mod:`~facecore.classroom.evaluate`: AUC and k-fold accuracy on the held-out pairs, the pixel baseline.

Everything is Keras 3 (``keras.ops``) and numpy; nothing downloads and nothing imports Streamlit.
Inference never imports this package; it imports inference (and evaluation's datasets).
"""
