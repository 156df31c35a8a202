"""litassist: ask questions of a pile of paper abstracts and get answers that cite them."""

from .api import Assistant
from .config import Settings
from .corpus import Paper

__all__ = ["Assistant", "Paper", "Settings"]
