"""Leaderboard: pack runs into submissions, score them safely, and rank them."""

from mempo_gym.leaderboard.board import build_leaderboard, load_results, rank
from mempo_gym.leaderboard.errors import SubmissionRejected
from mempo_gym.leaderboard.safezip import ArchiveLimits, SafeArchive, read_archive
from mempo_gym.leaderboard.schema import SCHEMA_VERSION
from mempo_gym.leaderboard.score import score_submission, write_result
from mempo_gym.leaderboard.submit import submit_run, write_submission

__all__ = [
    "ArchiveLimits", "SCHEMA_VERSION", "SafeArchive", "SubmissionRejected", "build_leaderboard", "load_results", "rank",
    "read_archive", "score_submission", "submit_run", "write_result", "write_submission",
]
