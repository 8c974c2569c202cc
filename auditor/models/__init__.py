"""Model loading: the ``Classifier`` wrapper, the core loaders (ONNX, torch.export, timm, factory, pickle),
weights files, zeroth-order gradients, and the preflight that finds a model's preprocessing."""
