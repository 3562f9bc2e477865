"""System 1 policy: configuration, model, behaviour-cloning trainer, ONNX export and builder."""
