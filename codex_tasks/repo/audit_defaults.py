"""The audit step's default capability buckets and remote-call patterns (light: the `with:`
model reads them at validation time, without the scanner)."""

from __future__ import annotations

DEFAULT_REMOTE_PATTERNS = [
    "requests", "urllib.request", "urllib3", "http.client", "httpx", "aiohttp", "websocket", "websockets",
    "socket.create_connection", "smtplib", "ftplib", "paramiko",
    "boto3", "botocore", "s3fs", "gcsfs", "google.cloud", "azure", "openai", "anthropic", "cohere",
    "wandb", "comet_ml", "neptune", "huggingface_hub", "*hf_hub_download", "*snapshot_download",
    "*.from_pretrained", "*.push_to_hub", "torch.hub", "datasets.load_dataset", "tensorflow_hub",
]

# Capability buckets: path globs and keywords (matched case-insensitively in paths and finding text).
DEFAULT_BUCKETS: dict[str, dict[str, list[str]]] = {
    "tokenization": {"paths": ["**/*token*"], "keywords": ["tokeniz", "sentencepiece", "vocab", "bpe"]},
    "modeling": {"paths": ["**/model*", "**/models/**", "**/*arch*"], "keywords": ["model", "attention", "layer", "transformer"]},
    "training": {"paths": ["**/train*", "**/trainer*", "**/optim*"], "keywords": ["train", "optimizer", "scheduler", "grad", "loss", "epoch"]},
    "config": {"paths": ["**/config*", "**/settings*", "**/*.yaml", "**/*.toml"], "keywords": ["config", "setting", "hparam", "argparse"]},
    "evaluation": {"paths": ["**/eval*"], "keywords": ["evaluat", "perplexity", "benchmark", "validation"]},
    "metrics": {"paths": ["**/metric*"], "keywords": ["metric", "accuracy", "score", "f1"]},
    "logging": {"paths": ["**/log*"], "keywords": ["logging", "logger", "log_"]},
    "checkpointing": {"paths": ["**/checkpoint*", "**/ckpt*"], "keywords": ["checkpoint", "ckpt", "state_dict", "save_pretrained", "resume"]},
    "data": {"paths": ["**/data*", "**/dataset*", "**/loader*"], "keywords": ["dataset", "dataloader", "corpus", "batch", "shard"]},
    "safety": {"paths": ["**/safety*", "**/secur*", "**/redact*"], "keywords": ["secret", "redact", "safety", "sanitiz", "password"]},
    "tests": {"paths": ["tests/**", "test/**", "**/test_*.py", "**/*_test.py", "**/conftest.py"], "keywords": ["pytest", "assert"]},
    "deployment": {"paths": ["**/deploy*", "**/serve*", "**/docker*", "**/Dockerfile*", "**/k8s/**"], "keywords": ["deploy", "serve", "docker", "endpoint", "export"]},
    "docs": {"paths": ["docs/**", "**/*.md", "**/*.rst"], "keywords": ["docstring", "documentation", "readme"]},
    "tracking": {"paths": ["**/track*", "**/mlflow*", "**/wandb*"], "keywords": ["mlflow", "wandb", "tensorboard", "tracking", "experiment"]},
    "extensibility": {"paths": ["**/plugin*", "**/registry*", "**/hooks*", "**/extension*"], "keywords": ["plugin", "registry", "hook", "extension", "register"]},
}
