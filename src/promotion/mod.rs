//! What comes after evolution: the validation gauntlet, the strategy registry and the reports
//! (see DESIGN.md).

pub mod candidates;
pub mod gauntlet;
pub mod registry;
pub mod report;
pub mod svg;
