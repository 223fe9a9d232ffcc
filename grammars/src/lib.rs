//! Grammars of the hotline's menus.
//!
//! This crate will own the grammar files per locale (`grammars/<locale>/`), a parser for a
//! practical subset of W3C SRGS 1.0 ABNF, DTMF grammars and built-ins (digits, yes/no, case
//! numbers with their check digit), tolerant matching of what the recogniser heard with a
//! confidence, and the exports the recogniser uses: hint phrases and whisper.cpp GBNF grammars.
//! It does no IO beyond loading grammar files. Nothing is defined yet.
