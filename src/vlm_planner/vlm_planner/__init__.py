"""System 2: a vision-language model loaded with QLoRA (4-bit NF4, double quantization) and peft LoRA adapters; publishes goals at about 1 Hz."""
