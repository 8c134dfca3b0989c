"""Parsers of aiida-matembed's CalcJobs."""

from .worker import WorkerParser

__all__ = ('WorkerParser',)
