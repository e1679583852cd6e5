//! Cheap randomness for weighted choice and jitter: a per-thread SplitMix64 seeded from the OS
//! once, so the hot path makes no system call. Not for secrets.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: the clock still spreads retries apart, which is all jitter needs.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
    })
}

/// A uniformly distributed number in `0..bound` (0 when `bound` is 0).
pub fn below(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Multiply-shift: unbiased enough for weights and jitter, and no division.
        ((u128::from(z) * u128::from(bound)) >> 64) as u64
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn stays_below_the_bound_and_covers_it() {
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let n = super::below(5);
            seen[n as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(super::below(0), 0);
    }
}
