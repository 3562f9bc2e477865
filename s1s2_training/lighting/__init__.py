"""Training of the adapter_manager lighting classifier (features from sim renders -> logistic regression)."""
