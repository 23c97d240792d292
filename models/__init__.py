"""Model training, ONNX export, manifests and scoring."""
