"""Everything that faces Triton: the serving contract, the model repository, the backend, the
server and the gRPC client. Nothing here imports torch, transformers or the training code."""
