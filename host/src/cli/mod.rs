//! The `coffer` command line.
