"""The task-sequence format: models, loading with positions, JSON Schema."""

from codex_tasks.sequence.load import LoadedSequence, load_sequence
from codex_tasks.sequence.models import OutputSpec, ParamSpec, Phase, Sequence, Step

__all__ = ["LoadedSequence", "OutputSpec", "ParamSpec", "Phase", "Sequence", "Step", "load_sequence"]
