"""Training: fine-tuning the joint model, exporting it to ONNX, tracking the run.

torch and transformers live here and nowhere in serving (the import contract in pyproject.toml,
checked by `make lint`). The Rasa component enters through `pipeline.train` alone.
"""
