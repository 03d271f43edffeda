//! What comes after evolution: reports now; the validation gauntlet and the strategy registry
//! later (see DESIGN.md).

pub mod report;
pub mod svg;
