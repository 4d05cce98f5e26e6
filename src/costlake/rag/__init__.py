"""The explanation layer: anomaly chunks, embedders, vector index, retriever, LLM providers."""
