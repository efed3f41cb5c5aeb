//! BuscaEscenas host (work in progress).
