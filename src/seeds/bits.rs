//! A condition over every bar, one bit per bar: what a program's boolean nodes compute.
//!
//! Bits are packed 64 to a word, bar `t` in bit `t % 64` of word `t / 64`, so `and`, `or` and
//! `not` over a year of hourly bars are 137 word operations rather than 8,760 byte ones. The
//! bits past the last bar are always 0 (every constructor and operation keeps them so); that
//! is what lets [`Bits::next_set`] stop at the first set word.

/// One bit per bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// `len` bits, all `b`.
    pub fn splat(len: usize, b: bool) -> Self {
        let mut words = vec![if b { u64::MAX } else { 0 }; len.div_ceil(64)];
        mask_tail(&mut words, len);
        Self { words, len }
    }

    /// Bit `t` is `f(a[t])`.
    pub fn pack1(a: &[f64], f: impl Fn(f64) -> bool) -> Self {
        let words = a
            .chunks(64)
            .map(|c| {
                let mut w = 0_u64;
                for (i, &x) in c.iter().enumerate() {
                    w |= u64::from(f(x)) << i;
                }
                w
            })
            .collect();
        Self {
            words,
            len: a.len(),
        }
    }

    /// Bit `t` is `f(a[t], b[t])`, over the shorter of the two.
    pub fn pack2(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> bool) -> Self {
        let len = a.len().min(b.len());
        let words = a[..len]
            .chunks(64)
            .zip(b[..len].chunks(64))
            .map(|(ca, cb)| {
                let mut w = 0_u64;
                for (i, (&x, &y)) in ca.iter().zip(cb).enumerate() {
                    w |= u64::from(f(x, y)) << i;
                }
                w
            })
            .collect();
        Self { words, len }
    }

    /// Bit `t` is `now(a[t], b[t])` and, one bar earlier, `before(a[t − 1], b[t − 1])` (never
    /// bit 0): a crossing, in one pass over the two series.
    pub fn crossing2(
        a: &[f64],
        b: &[f64],
        now: impl Fn(f64, f64) -> bool,
        before: impl Fn(f64, f64) -> bool,
    ) -> Self {
        let len = a.len().min(b.len());
        let mut carry = 0_u64;
        let words = a[..len]
            .chunks(64)
            .zip(b[..len].chunks(64))
            .map(|(ca, cb)| {
                let (mut n, mut e) = (0_u64, 0_u64);
                for (i, (&x, &y)) in ca.iter().zip(cb).enumerate() {
                    n |= u64::from(now(x, y)) << i;
                    e |= u64::from(before(x, y)) << i;
                }
                let w = n & ((e << 1) | carry);
                carry = e >> 63;
                w
            })
            .collect();
        Self { words, len }
    }

    /// [`Bits::crossing2`] of `a` against a number that is the same at every bar.
    pub fn crossing1(a: &[f64], now: impl Fn(f64) -> bool, before: impl Fn(f64) -> bool) -> Self {
        let mut carry = 0_u64;
        let words = a
            .chunks(64)
            .map(|c| {
                let (mut n, mut e) = (0_u64, 0_u64);
                for (i, &x) in c.iter().enumerate() {
                    n |= u64::from(now(x)) << i;
                    e |= u64::from(before(x)) << i;
                }
                let w = n & ((e << 1) | carry);
                carry = e >> 63;
                w
            })
            .collect();
        Self {
            words,
            len: a.len(),
        }
    }

    /// Bit `t` is `sides[t] == want` (a seed's sides: +1 long, −1 short, 0 flat).
    pub fn sides(sides: &[i8], want: i8) -> Self {
        let words = sides
            .chunks(64)
            .map(|c| {
                let mut w = 0_u64;
                for (i, &x) in c.iter().enumerate() {
                    w |= u64::from(x == want) << i;
                }
                w
            })
            .collect();
        Self {
            words,
            len: sides.len(),
        }
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bars.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held (for a cache's budget).
    pub fn bytes(&self) -> usize {
        8 * self.words.len()
    }

    /// Bit `t` (`false` past the end).
    pub fn get(&self, t: usize) -> bool {
        self.words
            .get(t / 64)
            .is_some_and(|w| (w >> (t % 64)) & 1 == 1)
    }

    fn zip(&self, o: &Self, f: impl Fn(u64, u64) -> u64) -> Self {
        let len = self.len.min(o.len);
        let mut words: Vec<u64> = self
            .words
            .iter()
            .zip(&o.words)
            .map(|(&a, &b)| f(a, b))
            .collect();
        words.truncate(len.div_ceil(64));
        mask_tail(&mut words, len);
        Self { words, len }
    }

    /// Both.
    pub fn and(&self, o: &Self) -> Self {
        self.zip(o, |a, b| a & b)
    }

    /// Either.
    pub fn or(&self, o: &Self) -> Self {
        self.zip(o, |a, b| a | b)
    }

    /// Exactly one.
    pub fn xor(&self, o: &Self) -> Self {
        self.zip(o, |a, b| a ^ b)
    }

    /// Not.
    pub fn not(&self) -> Self {
        let mut words: Vec<u64> = self.words.iter().map(|w| !w).collect();
        mask_tail(&mut words, self.len);
        Self {
            words,
            len: self.len,
        }
    }

    /// Bit `t` is `a[t]` where `self[t]`, `b[t]` elsewhere.
    pub fn select(&self, a: &Self, b: &Self) -> Self {
        let len = self.len.min(a.len).min(b.len);
        let mut words: Vec<u64> = self
            .words
            .iter()
            .zip(&a.words)
            .zip(&b.words)
            .map(|((&k, &x), &y)| (k & x) | (!k & y))
            .collect();
        words.truncate(len.div_ceil(64));
        mask_tail(&mut words, len);
        Self { words, len }
    }

    /// The condition one bar later: bit `t` is bit `t − 1`, bit 0 is 0.
    pub fn shifted_up(&self) -> Self {
        let mut carry = 0_u64;
        let mut words: Vec<u64> = self
            .words
            .iter()
            .map(|&w| {
                let out = (w << 1) | carry;
                carry = w >> 63;
                out
            })
            .collect();
        mask_tail(&mut words, self.len);
        Self {
            words,
            len: self.len,
        }
    }

    /// The first set bit at or after `from`, or [`Bits::len`] if there is none.
    pub fn next_set(&self, from: usize) -> usize {
        if from >= self.len {
            return self.len;
        }
        let mut i = from / 64;
        let mut w = self.words[i] & (u64::MAX << (from % 64));
        loop {
            if w != 0 {
                return 64 * i + w.trailing_zeros() as usize;
            }
            i += 1;
            match self.words.get(i) {
                Some(&next) => w = next,
                None => return self.len,
            }
        }
    }

    /// 1.0 where set, 0.0 elsewhere.
    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len)
            .map(|t| f64::from(u8::from(self.get(t))))
            .collect()
    }
}

/// Clears the bits at and past `len` in the last word.
fn mask_tail(words: &mut [u64], len: usize) {
    if !len.is_multiple_of(64) {
        if let Some(last) = words.last_mut() {
            *last &= (1_u64 << (len % 64)) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn bools(b: &Bits) -> Vec<bool> {
        (0..b.len()).map(|t| b.get(t)).collect()
    }

    fn from_bools(v: &[bool]) -> Bits {
        let f: Vec<f64> = v.iter().map(|&b| f64::from(u8::from(b))).collect();
        Bits::pack1(&f, |x| x == 1.0)
    }

    /// The words past the end are zero: an operation that leaves stray bits shows here.
    fn tail_is_clear(b: &Bits) -> bool {
        (b.len()..64 * b.words.len()).all(|t| (b.words[t / 64] >> (t % 64)) & 1 == 0)
    }

    #[test]
    fn a_few_hand_written_bars() {
        let a = from_bools(&[true, false, true, true, false]);
        let b = from_bools(&[true, true, false, true, false]);
        assert_eq!(a.words, vec![0b01101]);
        assert_eq!(bools(&a.and(&b)), [true, false, false, true, false]);
        assert_eq!(bools(&a.or(&b)), [true, true, true, true, false]);
        assert_eq!(bools(&a.xor(&b)), [false, true, true, false, false]);
        assert_eq!(bools(&a.not()), [false, true, false, false, true]);
        assert_eq!(bools(&a.shifted_up()), [false, true, false, true, true]);
        assert_eq!(a.not().words, vec![0b10010]);
        assert_eq!(a.next_set(0), 0);
        assert_eq!(a.next_set(1), 2);
        assert_eq!(a.next_set(4), 5);
        assert_eq!(a.to_f64(), [1.0, 0.0, 1.0, 1.0, 0.0]);
        let nan = Bits::pack2(&[f64::NAN, 1.0, 2.0], &[0.0, f64::NAN, 1.0], |x, y| x > y);
        assert_eq!(bools(&nan), [false, false, true]);
        assert_eq!(
            bools(&Bits::sides(&[1, -1, 0, 1], 1)),
            [true, false, false, true]
        );
        assert_eq!(
            bools(&Bits::sides(&[1, -1, 0, 1], -1)),
            [false, true, false, false]
        );
        assert!(Bits::splat(0, true).is_empty());
        assert_eq!(Bits::splat(0, true).next_set(0), 0);
    }

    #[test]
    fn word_operations_agree_with_bar_by_bar_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for len in [1, 2, 63, 64, 65, 127, 128, 129, 200, 1000] {
            let v = |rng: &mut ChaCha8Rng, p: f64| -> Vec<bool> {
                (0..len).map(|_| rng.gen_bool(p)).collect()
            };
            for p in [0.01, 0.5, 0.99] {
                let (x, y, k) = (v(&mut rng, p), v(&mut rng, 0.5), v(&mut rng, 0.5));
                let (a, b, c) = (from_bools(&x), from_bools(&y), from_bools(&k));
                let each = |f: &dyn Fn(usize) -> bool| (0..len).map(f).collect::<Vec<_>>();
                assert_eq!(bools(&a), x);
                assert_eq!(bools(&a.and(&b)), each(&|t| x[t] && y[t]));
                assert_eq!(bools(&a.or(&b)), each(&|t| x[t] || y[t]));
                assert_eq!(bools(&a.xor(&b)), each(&|t| x[t] != y[t]));
                assert_eq!(bools(&a.not()), each(&|t| !x[t]));
                assert_eq!(
                    bools(&c.select(&a, &b)),
                    each(&|t| if k[t] { x[t] } else { y[t] })
                );
                assert_eq!(bools(&a.shifted_up()), each(&|t| t >= 1 && x[t - 1]));
                let (fx, fy): (Vec<f64>, Vec<f64>) = (0..len)
                    .map(|t| (f64::from(u8::from(x[t])), f64::from(u8::from(y[t]))))
                    .unzip();
                let up = each(&|t| t >= 1 && x[t] && !y[t] && (!x[t - 1] || y[t - 1]));
                assert_eq!(
                    bools(&Bits::crossing2(&fx, &fy, |p, q| p > q, |p, q| p <= q)),
                    up
                );
                let rise = each(&|t| t >= 1 && x[t] && !x[t - 1]);
                assert_eq!(
                    bools(&Bits::crossing1(&fx, |p| p > 0.5, |p| p <= 0.5)),
                    rise
                );
                for b in [
                    a.not(),
                    a.shifted_up(),
                    c.select(&a, &b),
                    Bits::splat(len, true),
                ] {
                    assert!(tail_is_clear(&b), "len {len}");
                }
                for from in 0..=len + 2 {
                    let want = (from..len).find(|&t| x[t]).unwrap_or(len);
                    assert_eq!(a.next_set(from), want, "len {len}, from {from}");
                }
            }
        }
    }
}
