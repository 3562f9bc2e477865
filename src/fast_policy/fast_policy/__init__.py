"""System 1: a small ONNX policy run by ONNX Runtime in a 50 Hz loop that tracks the latest goal, with joint limits and a safe hold."""
