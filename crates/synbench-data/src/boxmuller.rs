//! The default generator: eight xoshiro128++ lanes per sample and a
//! branch-free float32 Box–Muller transform.
//!
//! Why not ChaCha8 + a float64 ziggurat (the 0.1 generator, still available
//! as [`crate::Generator::ChaCha8`]): at d = 150 528 the ziggurat's branches
//! and ChaCha's rounds cap generation near 1.3 k samples/s on two cores, a
//! quarter of what the encoder-bound pipeline needs to stay hidden on a GPU.
//! Here every step is a fixed sequence of correctly rounded IEEE-754
//! operations (+, ×, √, fused multiply-add) on arrays of eight lanes, with
//! no libm transcendental and no data-dependent branch, so LLVM vectorises
//! it and the bits are the same on every machine and vector width. It is the transform PyTorch's CPU `normal_` uses (24-bit
//! uniforms, `u1 ∈ (0, 1]`, radius `√(−2 ln u1)`), so the tails are cut at
//! `√(2·24·ln 2) ≈ 5.77` standard deviations, as in the reference.
//!
//! Layout (fixed, whatever the hardware): the normals of one sample come in
//! blocks of 16; in each block lane `l` turns one `(u1, u2)` pair into
//! positions `l` (cosine) and `8 + l` (sine).

/// Lanes per block; fixed so the output does not depend on the vector width.
const LANES: usize = 8;
/// Normals produced per block: one cosine and one sine per lane.
pub(crate) const BLOCK: usize = 2 * LANES;

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A SplitMix64 stream, used only to seed one sample's label and lanes.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
}

/// The per-sample random source: a label draw, then eight xoshiro128++ lanes.
pub(crate) struct SampleRng {
    /// State word `k` of every lane (structure of arrays, so it vectorises).
    state: [[u32; LANES]; 4],
    /// Uniform in [0, 1) with 53 bits, drawn once for the label.
    label_uniform: f64,
}

impl SampleRng {
    /// The stream of sample `sample` under `(seed, scale_index, split)`.
    pub(crate) fn new(seed: u64, scale_index: u32, split_bit: u8, sample: u64) -> Self {
        let key = mix64(mix64(mix64(seed) ^ (u64::from(scale_index) << 1 | u64::from(split_bit))) ^ sample);
        let mut seeder = SplitMix64(key);
        let label_uniform = (seeder.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        // Two SplitMix64 words per lane, in lane order, as xoshiro's four state words.
        let lanes: [[u32; 4]; LANES] = std::array::from_fn(|_| {
            let (a, b) = (seeder.next(), seeder.next());
            let words = [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
            if words == [0; 4] { [1, 0, 0, 0] } else { words } // xoshiro's one forbidden state; probability 2^-128
        });
        let state = std::array::from_fn(|k| std::array::from_fn(|l| lanes[l][k]));
        Self { state, label_uniform }
    }

    /// The label's uniform draw, in [0, 1).
    pub(crate) fn label_uniform(&self) -> f64 {
        self.label_uniform
    }

    /// Fills `out` (a multiple of [`BLOCK`] long) with standard normals.
    #[inline(always)]
    pub(crate) fn fill_normals(&mut self, out: &mut [f32]) {
        debug_assert_eq!(out.len() % BLOCK, 0);
        // The state lives in locals (registers) for the whole fill, so every
        // step is a handful of vector integer operations.
        let mut state = self.state;
        for block in out.chunks_exact_mut(BLOCK) {
            let a = xoshiro_step(&mut state);
            let b = xoshiro_step(&mut state);
            let (cos_half, sin_half) = block.split_at_mut(LANES);
            for l in 0..LANES {
                // 24-bit uniforms; the integer → float conversion is exact.
                let u1 = 1.0 - ((a[l] >> 8) as i32) as f32 * (1.0 / 16_777_216.0); // (0, 1]
                let radius = (-2.0 * ln_unit(u1)).sqrt();
                let (sin, cos) = sin_cos_turns(b[l] >> 8); // angle 2π·u2, u2 ∈ [0, 1)
                cos_half[l] = radius * cos;
                sin_half[l] = radius * sin;
            }
        }
        self.state = state;
    }
}

/// One xoshiro128++ step of every lane; returns each lane's output.
#[inline(always)]
fn xoshiro_step(state: &mut [[u32; LANES]; 4]) -> [u32; LANES] {
    let [s0, s1, s2, s3] = *state;
    let out: [u32; LANES] = std::array::from_fn(|l| s0[l].wrapping_add(s3[l]).rotate_left(7).wrapping_add(s0[l]));
    let t: [u32; LANES] = std::array::from_fn(|l| s1[l] << 9);
    let n2: [u32; LANES] = std::array::from_fn(|l| s2[l] ^ s0[l]);
    let n3: [u32; LANES] = std::array::from_fn(|l| s3[l] ^ s1[l]);
    let n1: [u32; LANES] = std::array::from_fn(|l| s1[l] ^ n2[l]);
    let n0: [u32; LANES] = std::array::from_fn(|l| s0[l] ^ n3[l]);
    let n2: [u32; LANES] = std::array::from_fn(|l| n2[l] ^ t[l]);
    let n3: [u32; LANES] = std::array::from_fn(|l| n3[l].rotate_left(11));
    *state = [n0, n1, n2, n3];
    out
}

/// ln(x) for x ∈ [2^-24, 1], Cephes' `logf` (about 1 ulp): x = m·2^e with
/// m ∈ [√½, √2), ln m by a degree-9 minimax polynomial in m − 1. Written
/// with `mul_add` (one rounding, the same on every machine; a single
/// instruction where FMA exists).
#[inline(always)]
fn ln_unit(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) as i32) - 126; // x = m·2^e, m ∈ [0.5, 1)
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (exponent - i32::from(small)) as f32;
    let x = if small { m + m - 1.0 } else { m - 1.0 };
    let z = x * x;
    let mut p = 7.037_683_6e-2_f32;
    for c in [-1.151_461e-1, 1.167_699_9e-1, -1.242_014_1e-1, 1.424_932_3e-1, -1.666_805_8e-1, 2.000_071_4e-1] {
        p = p.mul_add(x, c);
    }
    p = p.mul_add(x, -2.499_999_4e-1);
    p = p.mul_add(x, 0.333_333_3);
    let y = (p * x).mul_add(z, e * -2.121_944_4e-4);
    let y = z.mul_add(-0.5, y);
    e.mul_add(0.693_359_4, x + y)
}

/// sin and cos of 2π·k/2^24 for k ∈ [0, 2^24): the nearest quarter turn q
/// is split off in integers (exact), Cephes' minimax polynomials cover
/// |θ| ≤ π/4, and q rotates the pair by swapping and flipping sign bits.
#[inline(always)]
fn sin_cos_turns(k: u32) -> (f32, f32) {
    let q = (k + (1 << 21)) >> 22; // nearest quarter turn, 0..=4
    let rest = k as i32 - (q << 22) as i32; // |rest| ≤ 2^21, exact in f32
    let theta = rest as f32 * (std::f32::consts::TAU / 16_777_216.0); // |θ| ≤ π/4
    let z = theta * theta;
    let sin_poly = (-1.951_529_6e-4f32).mul_add(z, 8.332_161e-3).mul_add(z, -1.666_665_5e-1);
    let sin = (theta * z).mul_add(sin_poly, theta);
    let cos_poly = 2.443_315_7e-5f32.mul_add(z, -1.388_731_6e-3).mul_add(z, 4.166_664_6e-2);
    let cos = (z * z).mul_add(cos_poly, z.mul_add(-0.5, 1.0));
    let swap = q & 1 == 1;
    let (s, c) = if swap { (cos, sin) } else { (sin, cos) };
    let sin_sign = (q & 2) << 30;
    let cos_sign = ((q + 1) & 2) << 30;
    (f32::from_bits(s.to_bits() ^ sin_sign), f32::from_bits(c.to_bits() ^ cos_sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std_to_two_ulp_over_every_24_bit_uniform_exponent() {
        for k in [1u32, 2, 3, 1000, 1 << 20, (1 << 24) - 3, (1 << 24) - 1] {
            for j in 0..64u32 {
                let u = 1.0 - ((k.saturating_sub(j)).max(1)) as f32 / 16_777_216.0;
                let u = if u <= 0.0 { f32::MIN_POSITIVE } else { u };
                let (got, want) = (ln_unit(u), (u as f64).ln());
                let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE) * f32::EPSILON;
                assert!((got as f64 - want).abs() <= 2.0 * ulp as f64 + 1e-12, "ln({u}) = {got}, want {want}");
            }
        }
        // Every binade from 2^-24 to 1.
        for e in 0..=24 {
            for m in [1.0f32, 1.2, 1.41, 1.42, 1.7, 1.999_999] {
                let u = (m * 2f32.powi(-e)).min(1.0);
                let (got, want) = (ln_unit(u), (u as f64).ln());
                assert!((got as f64 - want).abs() <= 2.5e-7 * want.abs().max(1e-7), "ln({u}) = {got}, want {want}");
            }
        }
    }

    #[test]
    fn sin_cos_match_std_on_a_fine_grid_of_turns() {
        let mut worst = 0.0f64;
        for k in (0..1u32 << 24).step_by(97).chain([(1 << 24) - 1, 1 << 21, (1 << 21) - 1, 3 << 22]) {
            let (s, c) = sin_cos_turns(k);
            let angle = k as f64 / 16_777_216.0 * std::f64::consts::TAU;
            worst = worst.max((s as f64 - angle.sin()).abs()).max((c as f64 - angle.cos()).abs());
        }
        // One rounding of 2π·t in float32 (|θ| ≤ π/4 → ≤ 4.7e-8) plus the polynomial.
        assert!(worst < 2e-7, "worst |error| {worst}");
    }

    #[test]
    fn every_lane_is_the_reference_xoshiro128_plus_plus() {
        use rand_xoshiro::Xoshiro128PlusPlus;
        use rand_xoshiro::rand_core::{RngCore, SeedableRng};
        let mut rng = SampleRng::new(5, 2, 1, 77);
        let mut reference: Vec<Xoshiro128PlusPlus> = (0..LANES)
            .map(|l| {
                let mut seed = [0u8; 16];
                for k in 0..4 {
                    seed[4 * k..4 * k + 4].copy_from_slice(&rng.state[k][l].to_le_bytes());
                }
                Xoshiro128PlusPlus::from_seed(seed)
            })
            .collect();
        for _ in 0..100 {
            let ours = xoshiro_step(&mut rng.state);
            for (l, lane) in reference.iter_mut().enumerate() {
                assert_eq!(ours[l], lane.next_u32(), "lane {l}");
            }
        }
    }

    #[test]
    fn lanes_and_samples_get_distinct_streams() {
        let a = SampleRng::new(1, 0, 0, 0);
        let b = SampleRng::new(1, 0, 0, 1);
        let c = SampleRng::new(1, 0, 1, 0);
        assert_ne!(a.state, b.state);
        assert_ne!(a.state, c.state);
        for l in 1..LANES {
            assert_ne!(a.state[0][l], a.state[0][0]);
        }
    }
}
