//! Exit codes, shared by every subcommand.

/// The process exit codes (documented in `--help` and README). When several
/// apply, the highest in this order wins: 2, 3, 1, 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Nothing to report, or every loss accepted.
    Clean = 0,
    /// Loss found (of a verdict chosen by `--fail-on`).
    Loss = 1,
    /// The audit is incomplete or failed.
    Incomplete = 2,
    /// A declared claim is broken.
    Broken = 3,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn codes_are_the_documented_numbers() {
        assert_eq!(ExitCode::Clean.code(), 0);
        assert_eq!(ExitCode::Loss.code(), 1);
        assert_eq!(ExitCode::Incomplete.code(), 2);
        assert_eq!(ExitCode::Broken.code(), 3);
    }
}
