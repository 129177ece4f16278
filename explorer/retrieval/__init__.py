"""Nearest-neighbour retrieval of queries against a gallery: distances, chunked search, results."""

from explorer.retrieval.distances import pairwise_dist
from explorer.retrieval.results import RetrievalResults
from explorer.retrieval.search import RetrievalInputs, prepare_inputs, retrieve, retrieve_prepared

__all__ = ["RetrievalInputs", "RetrievalResults", "pairwise_dist", "prepare_inputs", "retrieve", "retrieve_prepared"]
