"""Models shared by several services, loaded in-process: the sentence encoders (local MiniLM, or a remote
text-embeddings-inference server) that embedding, classification and generation each run themselves."""
