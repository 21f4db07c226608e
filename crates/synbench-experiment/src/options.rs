//! Options that several modules share, each with its config spelling: the
//! [`Named`] trait (implemented here for every option enum of the owner
//! crates), the headline [`Estimator`] and the model [`Arch`]. A leaf module:
//! it imports nothing of this crate.

use synbench_data::Generator;
use synbench_models::{Activation, Backend, GlobalPool, OracleNonlinearity, Precision, ResNetBlock, StemType};
use synbench_probe::{AttackNorm, Averaging, CovarianceEstimator, EigenCutoff};
use synbench_theory::ScoreMode;

/// An option value with a config spelling, owned by the crate that defines it.
pub trait Named: Copy + PartialEq + 'static {
    /// Every value, the default first.
    fn all() -> &'static [Self];
    /// The config spelling.
    fn name(self) -> &'static str;

    /// The value a spelling names, or a message listing the accepted ones.
    fn from_name(name: &str) -> Result<Self, String> {
        Self::all().iter().copied().find(|v| v.name() == name).ok_or_else(|| {
            let allowed: Vec<String> = Self::all().iter().map(|v| format!("{:?}", v.name())).collect();
            format!("{name:?}: expected one of {}", allowed.join(", "))
        })
    }
}

macro_rules! named {
    ($($ty:ty),*) => {$(
        impl Named for $ty {
            fn all() -> &'static [Self] {
                &<$ty>::ALL
            }
            fn name(self) -> &'static str {
                <$ty>::name(self)
            }
        }
    )*};
}
named!(
    AttackNorm,
    Averaging,
    CovarianceEstimator,
    EigenCutoff,
    Generator,
    Precision,
    ScoreMode,
    Backend,
    GlobalPool,
    Activation,
    ResNetBlock,
    StemType,
    Estimator,
    OracleNonlinearity,
    Arch
);

/// Which per-scale outcomes a score is computed from (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Estimator {
    /// The plug-in probe evaluated on the test split (SPEC §3, the reference).
    #[default]
    Reference,
    /// The estimated population outcome of the ε-robust probe.
    Population,
}

impl Estimator {
    /// Every estimator, the default first.
    pub const ALL: [Self; 2] = [Self::Reference, Self::Population];

    /// The config spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Population => "population",
        }
    }
}

/// `[model] arch`: the encoder family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// timm's `VisionTransformer` (Burn).
    Vit,
    /// timm's `ResNet` (Burn).
    ResNet,
    /// timm's `ConvNeXt` (Burn).
    ConvNext,
    /// A TorchScript module on LibTorch.
    TorchScript,
    /// `f(x) = x` (SPEC §5).
    Identity,
    /// A seeded Gaussian projection (SPEC §5).
    RandomProjection,
    /// The linear-Gaussian oracle (SPEC §7).
    LinearGaussian,
    /// A model the driver brings (Python): the config only names it.
    External,
}

impl Arch {
    /// Every arch, in the order error messages list them.
    pub const ALL: [Self; 8] = [
        Self::Vit,
        Self::ResNet,
        Self::ConvNext,
        Self::TorchScript,
        Self::Identity,
        Self::RandomProjection,
        Self::LinearGaussian,
        Self::External,
    ];
    /// The timm families, whose `preset` names a timm model.
    pub const TIMM: [Self; 3] = [Self::Vit, Self::ResNet, Self::ConvNext];

    /// The config spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vit => "vit",
            Self::ResNet => "resnet",
            Self::ConvNext => "convnext",
            Self::TorchScript => "torchscript",
            Self::Identity => "identity",
            Self::RandomProjection => "random_projection",
            Self::LinearGaussian => "linear_gaussian",
            Self::External => "external",
        }
    }

    /// Whether it is a timm family.
    pub fn is_timm(self) -> bool {
        Self::TIMM.contains(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_arch_lists_every_arch() {
        assert_eq!(
            Arch::from_name("mlp").unwrap_err(),
            "\"mlp\": expected one of \"vit\", \"resnet\", \"convnext\", \"torchscript\", \"identity\", \
             \"random_projection\", \"linear_gaussian\", \"external\""
        );
        for arch in Arch::ALL {
            assert_eq!(Arch::from_name(arch.name()), Ok(arch));
        }
    }
}
