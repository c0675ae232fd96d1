"""The triplet and siamese classroom: triplet mining (numpy) and small Keras models trained on LFW crops.

Inference never imports this package; it imports inference (and evaluation's datasets).
"""
