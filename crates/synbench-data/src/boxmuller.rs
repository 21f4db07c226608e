//! The default generator: eight xoshiro128++ lanes per sample and a
//! branch-free float32 Box–Muller transform.
//!
//! Why not ChaCha8 + a float64 ziggurat (the 0.1 generator, still available
//! as [`crate::Generator::ChaCha8Ziggurat`]): at d = 150 528 the ziggurat's
//! branches and ChaCha's rounds cap generation near 1.3 k samples/s on two
//! cores, a quarter of what the encoder-bound pipeline needs to stay hidden
//! on a GPU. Here every step is a fixed sequence of correctly rounded
//! IEEE-754 operations (+, ×, √, fused multiply-add) on eight lanes, with no
//! libm transcendental and no data-dependent branch, so the bits are the
//! same on every machine and vector width. It is the transform PyTorch's
//! CPU `normal_` uses (24-bit uniforms, `u1 ∈ (0, 1]`, radius
//! `√(−2 ln u1)`), so the tails are cut at `√(2·24·ln 2) ≈ 5.77` standard
//! deviations, as in the reference.
//!
//! Two kernels compute it, operation for operation: a portable one on
//! `[_; 8]` arrays, and on x86-64 with AVX2 + FMA an explicit one on pulp's
//! `u32x8`/`f32x8` (chosen at run time; the tests hold the two to the same
//! bits). Profiled, the kernel is bound by the latency of the ln → √ chain
//! and by the physical registers its instructions hold meanwhile, hence
//! Estrin's scheme for the ln polynomial, an integer split of u1 into
//! mantissa and exponent (no compare, no select, no scaling by 2^-24), the
//! constants as memory operands, and software pipelining over three blocks.
//!
//! Layout (fixed, whatever the hardware): the normals of one sample come in
//! blocks of 16; in each block lane `l` turns one `(u1, u2)` pair into
//! positions `l` (cosine) and `8 + l` (sine).
//!
//! How the kernel got here (each step kept the output bits, except the
//! Estrin change, which bumped `GENERATOR_REVISION`; figures are A/B ratios
//! measured in one session on two cores):
//!
//! * `c8cde61` — the explicit AVX2 + FMA kernel and one fused pass
//!   (normals → `z·gain + offset`) when channels are whole blocks of 16 and
//!   Σ = I: the auto-vectoriser had scalarised xoshiro in the fused form.
//!   Batch 64 at d = 150 528: 6.6 k → 9.1–10.0 k samples/s. Otherwise the
//!   normals go through an L1-sized buffer and a second affine pass.
//! * `4f1b18a` — Estrin's scheme for the ln polynomial (4 dependent FMAs
//!   instead of 8): +7 % generation, max 0.84 vs 0.82 ulp over all 2^24
//!   uniforms; 0.12 % of outputs moved by one rounding (revision 2).
//! * `0b1f042` — software pipelining by one block (draws + ln of block i + 1
//!   before the √ and sin/cos of block i): the profile had a third of its
//!   samples on the √ waiting for its own ln chain; +15 % (11.2–13.3 k vs
//!   9.8–10.5 k samples/s).
//! * `4f4466b`, `c250ade`, `3444ba5` — the ln entry as an integer mantissa
//!   / exponent split with the 2^-24 scale folded into the exponent bias,
//!   constants as memory operands, and the three-stage pipeline (block
//!   i + 2's draws and split, block i + 1's ln and sin/cos, block i's √ and
//!   stores) as prologue, branch-free steady state and drain.
//! * `3a04855` (in the run, not here) — beside a CPU encoder the generator
//!   draws in a one-thread rayon pool of its own: its batches had queued
//!   behind the encoder's jobs in the global pool (132 s of "generation" in
//!   a 188 s bench run).

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
    pub(crate) fn fill_normals(&mut self, out: &mut [f32], kernel: Kernel) {
        self.fill(out, None, kernel);
    }

    /// Fills `out` (a multiple of [`BLOCK`] long) with `z·gain + offset`
    /// (one fused multiply-add) for standard normals `z`: the bits of
    /// [`Self::fill_normals`] followed by that `mul_add`, in one pass.
    pub(crate) fn fill_affine(&mut self, out: &mut [f32], gain: f32, offset: f32, kernel: Kernel) {
        self.fill(out, Some((gain, offset)), kernel);
    }

    fn fill(&mut self, out: &mut [f32], affine: Option<(f32, f32)>, kernel: Kernel) {
        assert_eq!(out.len() % BLOCK, 0, "normals come in blocks of {BLOCK}");
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Best
            && let Some(simd) = pulp::x86::V3::try_new()
        {
            return avx2::fill(simd, &mut self.state, out, affine);
        }
        let _ = kernel;
        match affine {
            None => portable_fill(&mut self.state, out, |z| z),
            Some((gain, offset)) => portable_fill(&mut self.state, out, |z| z.mul_add(gain, offset)),
        }
    }
}

/// Which implementation computes the normals; both give the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// The explicit AVX2 + FMA kernel where the CPU has them, else [`Kernel::Portable`].
    Best,
    /// Plain Rust on arrays of eight lanes (what the compiler makes of it).
    #[cfg_attr(not(test), expect(dead_code, reason = "the tests hold Best to its bits"))]
    Portable,
}

/// The portable kernel: `emit` maps each normal to the value stored.
#[inline(always)]
fn portable_fill(state: &mut [[u32; LANES]; 4], out: &mut [f32], emit: impl Fn(f32) -> f32) {
    // The state lives in locals (registers) for the whole fill.
    let mut lanes = *state;
    for block in out.chunks_exact_mut(BLOCK) {
        let a = xoshiro_step(&mut lanes);
        let b = xoshiro_step(&mut lanes);
        let (cos_half, sin_half) = block.split_at_mut(LANES);
        for l in 0..LANES {
            // 24-bit uniforms; the integer → float conversion is exact.
            // u1 = 1 − (a >> 8)·2^-24 ∈ (0, 1], as the integer 2^24 − (a >> 8).
            let radius = (-2.0 * ln_uniform(UNIT_24_ONE - (a[l] >> 8))).sqrt();
            let (sin, cos) = sin_cos_turns(b[l] >> 8); // angle 2π·u2, u2 ∈ [0, 1)
            cos_half[l] = emit(radius * cos);
            sin_half[l] = emit(radius * sin);
        }
    }
    *state = lanes;
}

/// The same transform written with pulp's AVX2 + FMA operations, one
/// `u32x8`/`f32x8` per step, operation for operation as in the portable
/// kernel (so the same bits). Left to the auto-vectoriser, the xoshiro
/// steps were sometimes scalarised (half the speed); here they cannot be.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use pulp::x86::V3;
    use pulp::{cast, f32x8, i32x8, u32x8};

    use super::{
        BLOCK, LANES, LN_POLY, LN2_HI, LN2_LO, MANTISSA_MASK, ONE_MINUS_SQRT_HALF_BITS, SIN_COS, SQRT_HALF_BITS,
        UNIFORM_EXPONENT_BIAS, UNIT_24_ONE,
    };

    pub(super) fn fill(simd: V3, state: &mut [[u32; LANES]; 4], out: &mut [f32], affine: Option<(f32, f32)>) {
        // A struct, not a closure: its `call` is `inline(always)`, so the
        // whole kernel is compiled inside pulp's AVX2 + FMA context (a
        // closure's `call_once` shim may be left out of line, and every
        // intrinsic with it).
        struct Fill<'a> {
            simd: V3,
            state: &'a mut [[u32; LANES]; 4],
            out: &'a mut [f32],
            affine: Option<(f32, f32)>,
        }
        impl pulp::NullaryFnOnce for Fill<'_> {
            type Output = ();
            #[inline(always)]
            fn call(self) {
                let Self { simd, state, out, affine } = self;
                match affine {
                    None => run(simd, state, out, |z| z),
                    Some((gain, offset)) => {
                        let (gain, offset) = (simd.splat_f32x8(gain), simd.splat_f32x8(offset));
                        run(simd, state, out, |z| simd.mul_add_f32x8(z, gain, offset))
                    }
                }
            }
        }
        simd.vectorize(Fill { simd, state, out, affine })
    }

    /// Software-pipelined over three blocks. Iteration `i` draws block
    /// `i + 2`'s uniforms and splits u1 into mantissa and exponent (stage
    /// A), evaluates block `i + 1`'s ln polynomial and sin/cos (stage B),
    /// and takes block `i`'s √ and stores it (stage C). In one iteration a
    /// block's whole chain (xoshiro → ln → √ → store, about 70 cycles)
    /// held the physical registers of everything dispatched behind it;
    /// split, no stage's chain is longer than its sin/cos or ln polynomial.
    /// Same operations, same xoshiro order, same bits.
    #[inline(always)]
    fn run(simd: V3, state: &mut [[u32; LANES]; 4], out: &mut [f32], emit: impl Fn(f32x8) -> f32x8) {
        let blocks = out.len() / BLOCK;
        if blocks == 0 {
            return;
        }
        let k = &std::hint::black_box(Splats::new(simd));
        let mut lanes: [u32x8; 4] = cast(*state);
        let finish = |block: &mut [f32], (r2, sin, cos): (f32x8, f32x8, f32x8)| {
            let radius = simd.sqrt_f32x8(r2);
            let (cos_half, sin_half) = block.split_at_mut(LANES);
            let cos_half: &mut [f32; LANES] = cos_half.try_into().expect("LANES floats");
            let sin_half: &mut [f32; LANES] = sin_half.try_into().expect("LANES floats");
            *cos_half = cast(emit(simd.mul_f32x8(radius, cos)));
            *sin_half = cast(emit(simd.mul_f32x8(radius, sin)));
        };
        // Fill the pipeline: stage A of blocks 0 and 1, stage B of block 0.
        let (mut x, mut e, mut b) = draw(simd, k, &mut lanes);
        let (mut r2, (mut sin, mut cos)) = polar(simd, k, x, e, b);
        if blocks > 1 {
            (x, e, b) = draw(simd, k, &mut lanes);
        }
        // Steady state: iteration i runs A(i + 2), B(i + 1), C(i).
        let (body, tail) = out.split_at_mut(blocks.saturating_sub(2) * BLOCK);
        for block in body.chunks_exact_mut(BLOCK) {
            let drawn = draw(simd, k, &mut lanes);
            let here = (r2, sin, cos);
            (r2, (sin, cos)) = polar(simd, k, x, e, b);
            (x, e, b) = drawn;
            finish(block, here);
        }
        // Drain: B and C of the last two blocks.
        let mut tail = tail.chunks_exact_mut(BLOCK);
        if blocks > 1 {
            let here = (r2, sin, cos);
            (r2, (sin, cos)) = polar(simd, k, x, e, b);
            finish(tail.next().expect("two blocks left"), here);
        }
        finish(tail.next().expect("one block left"), (r2, sin, cos));
        *state = cast(lanes);
    }

    /// Stage A: a block's two draws and u1 split into `x = m − 1` and `e`.
    #[inline(always)]
    fn draw(simd: V3, k: &Splats, lanes: &mut [u32x8; 4]) -> (f32x8, f32x8, u32x8) {
        let a = step(simd, lanes);
        let b = step(simd, lanes);
        let (x, e) = ln_split(simd, k, a);
        (x, e, b)
    }

    /// Stage B: `−2 ln u1` and the angle's (sin, cos).
    #[inline(always)]
    fn polar(simd: V3, k: &Splats, x: f32x8, e: f32x8, b: u32x8) -> (f32x8, (f32x8, f32x8)) {
        let r2 = simd.mul_f32x8(k.neg_two, ln_poly(simd, k, x, e));
        (r2, sin_cos_turns(simd, k, simd.shr_const_u32x8::<8>(b)))
    }

    /// The kernel's constants, splat once per fill and passed through
    /// `black_box`. Opaque to LLVM, they become memory operands of the
    /// instructions that use them; as known constants, LLVM re-broadcast
    /// each one from the constant pool in every iteration: 24 more
    /// instructions per block, each taking a physical register, which is
    /// what dispatch waits on most (llvm-mca, znver3).
    struct Splats {
        neg_two: f32x8,
        one: f32x8,
        neg_half: f32x8,
        unit_24_one: u32x8,
        one_minus_sqrt_half_bits: u32x8,
        exponent_bias: i32x8,
        mantissa_mask: u32x8,
        sqrt_half_bits: u32x8,
        ln_poly: [f32x8; 9],
        ln2_hi: f32x8,
        ln2_lo: f32x8,
        eighth_turn: u32x8,
        turn: f32x8,
        sin: [f32x8; 3],
        cos: [f32x8; 3],
        one_u32: u32x8,
        two_u32: u32x8,
    }

    impl Splats {
        #[inline(always)]
        fn new(simd: V3) -> Self {
            let splat = |v: f32| simd.splat_f32x8(v);
            Self {
                neg_two: splat(-2.0),
                one: splat(1.0),
                neg_half: splat(-0.5),
                unit_24_one: simd.splat_u32x8(UNIT_24_ONE),
                one_minus_sqrt_half_bits: simd.splat_u32x8(ONE_MINUS_SQRT_HALF_BITS),
                exponent_bias: simd.splat_i32x8(UNIFORM_EXPONENT_BIAS),
                mantissa_mask: simd.splat_u32x8(MANTISSA_MASK),
                sqrt_half_bits: simd.splat_u32x8(SQRT_HALF_BITS),
                ln_poly: LN_POLY.map(splat),
                ln2_hi: splat(LN2_HI),
                ln2_lo: splat(LN2_LO),
                eighth_turn: simd.splat_u32x8(1 << 21),
                turn: splat(SIN_COS.turn),
                sin: SIN_COS.sin.map(splat),
                cos: SIN_COS.cos.map(splat),
                one_u32: simd.splat_u32x8(1),
                two_u32: simd.splat_u32x8(2),
            }
        }
    }

    #[inline(always)]
    fn rotl<const LEFT: i32, const RIGHT: i32>(simd: V3, x: u32x8) -> u32x8 {
        simd.or_u32x8(simd.shl_const_u32x8::<LEFT>(x), simd.shr_const_u32x8::<RIGHT>(x))
    }

    #[inline(always)]
    fn step(simd: V3, state: &mut [u32x8; 4]) -> u32x8 {
        let [s0, s1, s2, s3] = *state;
        let out = simd.wrapping_add_u32x8(rotl::<7, 25>(simd, simd.wrapping_add_u32x8(s0, s3)), s0);
        let t = simd.shl_const_u32x8::<9>(s1);
        let n2 = simd.xor_u32x8(s2, s0);
        let n3 = simd.xor_u32x8(s3, s1);
        let n1 = simd.xor_u32x8(s1, n2);
        let n0 = simd.xor_u32x8(s0, n3);
        let n2 = simd.xor_u32x8(n2, t);
        let n3 = rotl::<11, 21>(simd, n3);
        *state = [n0, n1, n2, n3];
        out
    }

    /// `u1 = 1 − (a >> 8)·2^-24` split into `x = m − 1` and `e` (u1 = m·2^e,
    /// m ∈ [√½, √2)), from the bits of `j = 2^24 − (a >> 8)`, as the portable
    /// `ln_uniform` and `ln_from_bits` do; `ln_poly` finishes the logarithm.
    #[inline(always)]
    fn ln_split(simd: V3, k: &Splats, a: u32x8) -> (f32x8, f32x8) {
        let j = simd.wrapping_sub_u32x8(k.unit_24_one, simd.shr_const_u32x8::<8>(a));
        let bits: u32x8 = cast(simd.convert_i32x8_to_f32x8(cast(j)));
        let shifted = simd.wrapping_add_u32x8(bits, k.one_minus_sqrt_half_bits);
        let exponent: i32x8 = simd.wrapping_sub_i32x8(cast(simd.shr_const_u32x8::<23>(shifted)), k.exponent_bias);
        let e = simd.convert_i32x8_to_f32x8(exponent);
        let m = simd.wrapping_add_u32x8(simd.and_u32x8(shifted, k.mantissa_mask), k.sqrt_half_bits);
        (simd.sub_f32x8(cast(m), k.one), e)
    }

    #[inline(always)]
    fn ln_poly(simd: V3, k: &Splats, x: f32x8, e: f32x8) -> f32x8 {
        let z = simd.mul_f32x8(x, x);
        // Estrin's scheme, as in the portable `ln_from_bits`.
        let c = |power: usize| k.ln_poly[8 - power]; // coefficient of x^power
        let z2 = simd.mul_f32x8(z, z);
        let t0 = simd.mul_add_f32x8(c(1), x, c(0));
        let t1 = simd.mul_add_f32x8(c(3), x, c(2));
        let t2 = simd.mul_add_f32x8(c(5), x, c(4));
        let t3 = simd.mul_add_f32x8(c(7), x, c(6));
        let u0 = simd.mul_add_f32x8(t1, z, t0);
        let u1 = simd.mul_add_f32x8(t3, z, t2);
        let p = simd.mul_add_f32x8(simd.mul_add_f32x8(c(8), z2, u1), z2, u0);
        let y = simd.mul_add_f32x8(simd.mul_f32x8(p, x), z, simd.mul_f32x8(e, k.ln2_lo));
        let y = simd.mul_add_f32x8(z, k.neg_half, y);
        simd.mul_add_f32x8(e, k.ln2_hi, simd.add_f32x8(x, y))
    }

    #[inline(always)]
    fn sin_cos_turns(simd: V3, k: &Splats, turns: u32x8) -> (f32x8, f32x8) {
        let q = simd.shr_const_u32x8::<22>(simd.wrapping_add_u32x8(turns, k.eighth_turn));
        let rest: i32x8 = cast(simd.wrapping_sub_u32x8(turns, simd.shl_const_u32x8::<22>(q)));
        let theta = simd.mul_f32x8(simd.convert_i32x8_to_f32x8(rest), k.turn);
        let z = simd.mul_f32x8(theta, theta);
        let [s0, s1, s2] = k.sin;
        let sin_poly = simd.mul_add_f32x8(simd.mul_add_f32x8(s0, z, s1), z, s2);
        let sin = simd.mul_add_f32x8(simd.mul_f32x8(theta, z), sin_poly, theta);
        let [c0, c1, c2] = k.cos;
        let cos_poly = simd.mul_add_f32x8(simd.mul_add_f32x8(c0, z, c1), z, c2);
        let cos = simd.mul_add_f32x8(simd.mul_f32x8(z, z), cos_poly, simd.mul_add_f32x8(z, k.neg_half, k.one));
        let one = k.one_u32;
        let swap = simd.cmp_eq_u32x8(simd.and_u32x8(q, one), one);
        let (s, c) = (simd.select_f32x8(swap, cos, sin), simd.select_f32x8(swap, sin, cos));
        let two = k.two_u32;
        let sin_sign = simd.shl_const_u32x8::<30>(simd.and_u32x8(q, two));
        let cos_sign = simd.shl_const_u32x8::<30>(simd.and_u32x8(simd.wrapping_add_u32x8(q, one), two));
        (cast(simd.xor_u32x8(cast(s), sin_sign)), cast(simd.xor_u32x8(cast(c), cos_sign)))
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

/// Cephes' `logf` polynomial for ln(1 + x) − x + x²/2 = x³·P(x), highest degree first.
const LN_POLY: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    0.333_333_3,
];

/// ln 2 split for Cephes' `logf`: `e·ln 2 = e·LN2_HI + e·LN2_LO`, the high
/// part exact in float32 for the exponents that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// One 2^-24 step: a 24-bit integer times this is its uniform in [0, 1).
const UNIT_24: f32 = 1.0 / 16_777_216.0;

/// 2^24: `UNIT_24_ONE − k` is `(1 − k·2^-24)·2^24` for a 24-bit `k`.
const UNIT_24_ONE: u32 = 1 << 24;
/// float32's exponent bias plus 24: read from the bits of `j`, it gives the
/// exponent of `j·2^-24` (the uniform's scale folded into the exponent).
const UNIFORM_EXPONENT_BIAS: i32 = 127 + 24;

/// The bits of √½ in float32 (0.707 106 77), where `ln_from_bits` splits m.
const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
/// Added to a float's bits, carries into the exponent iff its mantissa ≥ √2.
const ONE_MINUS_SQRT_HALF_BITS: u32 = 0x3f80_0000 - SQRT_HALF_BITS;
/// The 23 mantissa bits of a float32.
const MANTISSA_MASK: u32 = 0x007f_ffff;

/// Cephes' `sinf`/`cosf` polynomials on |θ| ≤ π/4 and the angle of one 2^-24 turn.
struct SinCos {
    turn: f32,
    sin: [f32; 3],
    cos: [f32; 3],
}

const SIN_COS: SinCos = SinCos {
    turn: std::f32::consts::TAU * UNIT_24,
    sin: [-1.951_529_6e-4, 8.332_161e-3, -1.666_665_5e-1],
    cos: [2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2],
};

/// ln(j·2^-24) for j ∈ [1, 2^24]: the logarithm of the uniform u1 ∈ (0, 1]
/// that the 24-bit integer `j` stands for. `j` converts to float32 exactly,
/// and scaling by 2^-24 only moves the exponent, so it is folded into the
/// exponent's bias instead of spent as a multiplication.
#[inline(always)]
fn ln_uniform(j: u32) -> f32 {
    ln_from_bits((j as f32).to_bits(), UNIFORM_EXPONENT_BIAS)
}

/// ln(x) of a positive normal float32 (the tests' entry point).
#[cfg(test)]
fn ln_unit(x: f32) -> f32 {
    ln_from_bits(x.to_bits(), 127)
}

/// Cephes' `logf` (about 1 ulp) on the bits of a positive normal float32
/// whose value is scaled by 2^(127 − bias): x = m·2^e with m ∈ [√½, √2),
/// ln m by a degree-9 minimax polynomial in m − 1. The split of x into m
/// and e is integer arithmetic (as in musl's `logf`): adding
/// `0x3f80_0000 − bits(√½)` to the bits carries into the exponent exactly
/// when the mantissa is at least √2's, so no compare and select. Written
/// with `mul_add` (one rounding, the same on every machine; a single
/// instruction where FMA exists).
#[inline(always)]
fn ln_from_bits(bits: u32, bias: i32) -> f32 {
    let shifted = bits.wrapping_add(ONE_MINUS_SQRT_HALF_BITS);
    let e = ((shifted >> 23) as i32 - bias) as f32;
    let x = f32::from_bits((shifted & MANTISSA_MASK) + SQRT_HALF_BITS) - 1.0; // exact: m ∈ [√½, √2)
    let z = x * x;
    // Estrin's scheme: the polynomial's dependency chain is four fused
    // multiply-adds deep instead of Horner's eight (the generator is
    // latency-bound), for the same accuracy.
    let c = |k: usize| LN_POLY[8 - k]; // coefficient of x^k
    let z2 = z * z;
    let (t0, t1) = (c(1).mul_add(x, c(0)), c(3).mul_add(x, c(2)));
    let (t2, t3) = (c(5).mul_add(x, c(4)), c(7).mul_add(x, c(6)));
    let (u0, u1) = (t1.mul_add(z, t0), t3.mul_add(z, t2));
    let p = c(8).mul_add(z2, u1).mul_add(z2, u0);
    let y = (p * x).mul_add(z, e * LN2_LO);
    let y = z.mul_add(-0.5, y);
    e.mul_add(LN2_HI, x + y)
}

/// sin and cos of 2π·k/2^24 for k ∈ [0, 2^24): the nearest quarter turn q
/// is split off in integers (exact), Cephes' minimax polynomials cover
/// |θ| ≤ π/4, and q rotates the pair by swapping and flipping sign bits.
#[inline(always)]
fn sin_cos_turns(k: u32) -> (f32, f32) {
    let q = (k + (1 << 21)) >> 22; // nearest quarter turn, 0..=4
    let rest = k as i32 - (q << 22) as i32; // |rest| ≤ 2^21, exact in f32
    let theta = rest as f32 * SIN_COS.turn; // |θ| ≤ π/4
    let z = theta * theta;
    let [s0, s1, s2] = SIN_COS.sin;
    let sin_poly = s0.mul_add(z, s1).mul_add(z, s2);
    let sin = (theta * z).mul_add(sin_poly, theta);
    let [c0, c1, c2] = SIN_COS.cos;
    let cos_poly = c0.mul_add(z, c1).mul_add(z, c2);
    let cos = (z * z).mul_add(cos_poly, z.mul_add(-0.5, 1.0));
    let swap = q & 1 == 1;
    let (s, c) = if swap { (cos, sin) } else { (sin, cos) };
    let sin_sign = (q & 2) << 30;
    let cos_sign = ((q + 1) & 2) << 30;
    (f32::from_bits(s.to_bits() ^ sin_sign), f32::from_bits(c.to_bits() ^ cos_sign))
}

/// Whether [`Kernel::Best`] runs the explicit kernel on this CPU: pulp's
/// x86-64-v3 level (AVX2, FMA, BMI1/2, LZCNT, …), the check `fill` makes.
#[cfg(test)]
fn explicit_kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return pulp::x86::V3::try_new().is_some();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// For the tests that hold [`Kernel::Best`] to the portable kernel's bits:
/// on a CPU without AVX2 + FMA, `Best` *is* the portable kernel, and such a
/// test compares it with itself. Says so on stderr, naming `test`, and
/// panics where the environment variable `CI` is set (to anything but
/// empty, `0` or `false`): CI runs on machines with AVX2, where a silent
/// self-comparison would be a defect.
#[cfg(test)]
pub(crate) fn require_explicit_kernel(test: &str) {
    use std::io::Write;
    let ci = std::env::var("CI").ok();
    if let Some((warning, fail)) = self_comparison(test, explicit_kernel_available(), ci.as_deref()) {
        // Straight to stderr: libtest captures `eprintln!` of passing tests.
        let _ = writeln!(std::io::stderr().lock(), "\n{warning}\n");
        assert!(!fail, "{warning}");
    }
}

/// The warning of [`require_explicit_kernel`] and whether it fails the test,
/// or `None` where the explicit kernel runs.
#[cfg(test)]
fn self_comparison(test: &str, available: bool, ci: Option<&str>) -> Option<(String, bool)> {
    if available {
        return None;
    }
    let ci = ci.filter(|v| !(v.is_empty() || *v == "0" || v.eq_ignore_ascii_case("false")));
    let mut warning = format!(
        "WARNING: {test}: this CPU lacks AVX2 + FMA, so Kernel::Best is the portable kernel and the \
         test compares the portable kernel with itself: the explicit AVX2 kernel's bits are NOT checked here"
    );
    if let Some(ci) = ci {
        warning += &format!(" (CI={ci:?} is set and CI machines have AVX2: failing)");
    }
    Some((warning, ci.is_some()))
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
    fn the_uniforms_scale_is_folded_into_the_exponent_exactly() {
        // ln_uniform(j) takes the bits of j, not of j·2^-24: the same bits
        // for every j (checked exhaustively once; here a stride and the ends).
        let ends = [1, 2, 3, (1 << 23) - 1, 1 << 23, (1 << 24) - 1, 1 << 24];
        for j in (1..=1u32 << 24).step_by(4099).chain(ends) {
            let u = j as f32 * UNIT_24;
            assert_eq!(ln_uniform(j).to_bits(), ln_unit(u).to_bits(), "j = {j}");
        }
        // Mantissas on either side of √2, where m's range folds.
        for bits in [0x3fb5_04f2u32, 0x3fb5_04f3, 0x3fb5_04f4, 0x3f35_04f2, 0x3f35_04f3, 0x3f35_04f4] {
            let x = f32::from_bits(bits);
            let want = (x as f64).ln();
            assert!((ln_unit(x) as f64 - want).abs() <= 1.5 * f32::EPSILON as f64 * want.abs(), "ln({x})");
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
    fn kernels_agree_on_every_pipeline_length_and_leave_the_same_state() {
        require_explicit_kernel("boxmuller::tests::kernels_agree_on_every_pipeline_length_and_leave_the_same_state");
        // The AVX2 loop's prologue and drain differ for 1, 2 and ≥ 3
        // blocks; a second fill must continue from the same state.
        for blocks in 1..=5 {
            for affine in [None, Some((4.37f32, -2.11f32))] {
                let (mut best, mut portable) = (SampleRng::new(9, 4, 0, 3), SampleRng::new(9, 4, 0, 3));
                for round in 0..2 {
                    let (mut x, mut y) = (vec![0f32; blocks * BLOCK], vec![1f32; blocks * BLOCK]);
                    best.fill(&mut x, affine, Kernel::Best);
                    portable.fill(&mut y, affine, Kernel::Portable);
                    let same = x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits());
                    assert!(same, "{blocks} blocks, affine {affine:?}, fill {round}");
                    assert_eq!(best.state, portable.state, "{blocks} blocks, state after fill {round}");
                }
            }
        }
    }

    #[test]
    fn a_self_comparison_is_announced_and_fails_under_ci() {
        assert_eq!(self_comparison("t", true, Some("true")), None);
        let (warning, fail) = self_comparison("the_test", false, None).unwrap();
        assert!(!fail && warning.contains("the_test") && warning.contains("NOT checked"), "{warning}");
        for ci in ["true", "1", "yes"] {
            let (warning, fail) = self_comparison("the_test", false, Some(ci)).unwrap();
            assert!(fail && warning.contains("the_test") && warning.contains("CI="), "{warning}");
        }
        for ci in ["", "0", "false", "FALSE"] {
            assert!(!self_comparison("the_test", false, Some(ci)).unwrap().1, "CI={ci:?}");
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
