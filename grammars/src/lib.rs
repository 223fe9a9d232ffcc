//! Grammars of the hotline's menus.
pub mod ast;
mod error;
pub mod lang;
mod parse;
pub use error::{Error, Position, Result};
pub use parse::parse;
