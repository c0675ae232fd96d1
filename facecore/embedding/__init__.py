"""Face embedders: aligned chips in, vectors out, picked by name from ``EMBEDDERS``.

One module per model registers itself here (``dlib_keras``: dlib's ResNet in Keras 3, the default;
``dlib_reference``: dlib itself, the test oracle; ``dlib_onnx``: dlib's ResNet under onnxruntime, a CPU
runtime to measure; ``arcface``: ArcFace, Keras port and onnxruntime; ``keras_file``: your own
``.keras`` model); ``model_store`` keeps the folder of your own models. Importing this package loads no model library.
"""

from facecore.embedding.base import DEFAULT_EMBEDDER, EMBEDDERS, Embedder, get_embedder, keras_gpus

__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "get_embedder", "keras_gpus"]
