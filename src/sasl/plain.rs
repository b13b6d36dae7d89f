//! plain (being written).
