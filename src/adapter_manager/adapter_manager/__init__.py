"""Classifies lighting/context from the camera and hot-swaps the planner's per-environment LoRA adapter."""
