//! BuscaEscenas indexer (work in progress).
