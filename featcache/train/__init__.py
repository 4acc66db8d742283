"""Training from the layer cache: data streaming, the training loop, checkpoints, DDP."""

from featcache.train.config import TrainConfig, resolve_config

__all__ = ["TrainConfig", "resolve_config"]
