/// A deterministic pseudo-random sequence for generated test histories:
/// the same seed gives the same history on every machine, so a failure is
/// reproduced by running the test again.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A number in `0..n`.
    pub fn roll(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
