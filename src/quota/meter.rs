//! Counting the bytes of one upload request as they stream (pure).

use crate::quota::limits::Allowance;

/// What to do with the next chunk of the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Forward it.
    Forward,
    /// It crosses the limit: end the upstream body cleanly here (the chunk is not forwarded).
    Cut,
    /// Already cut: swallow it.
    Drop,
}

#[derive(Debug, Clone)]
pub struct Meter {
    pub allowance: Allowance,
    /// Bytes of the blob so far: the offset the request started at plus what was forwarded.
    pub total: u64,
    pub over: bool,
}

impl Meter {
    pub fn new(allowance: Allowance, offset: u64) -> Meter {
        Meter {
            allowance,
            total: offset,
            over: false,
        }
    }

    /// Account for a chunk of `len` bytes.
    pub fn step(&mut self, len: usize) -> Step {
        if self.over {
            return Step::Drop;
        }
        let next = self.total.saturating_add(len as u64);
        if next > self.allowance.bytes {
            self.over = true;
            return Step::Cut;
        }
        self.total = next;
        Step::Forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_the_crossing_chunk() {
        let mut m = Meter::new(
            Allowance {
                bytes: 100,
                reason: String::new(),
            },
            40,
        );
        assert_eq!(m.step(50), Step::Forward);
        assert_eq!(m.step(10), Step::Forward);
        assert_eq!(m.total, 100);
        assert_eq!(m.step(1), Step::Cut);
        assert_eq!(m.step(1), Step::Drop);
        assert_eq!(
            m.total, 100,
            "the crossing chunk is not counted as forwarded"
        );
    }
}
