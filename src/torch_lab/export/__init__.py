"""A trained model as a file to deploy: TorchScript, a ``torch.export`` program or ONNX
(``formats``), each loaded back and compared with the checkpoint's model (``check``).

May import torch (and ONNX, onnxscript and ONNX Runtime, the ``onnx`` extra, inside functions),
``torch_lab.errors`` and ``torch_lab.storage``; never the commands. The ``export`` command's
recipe is ``torch_lab.launch.export``.
"""
