//! Backends and devices: a cargo feature chooses which backends a binary
//! contains, the config chooses one of them at run time.

use std::fmt;
use std::str::FromStr;

#[cfg(feature = "burn")]
use burn::tensor::{Device, FloatDType};

use crate::EncoderError;

/// A Burn backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Pure-Rust CPU backend (feature `flex`, the default).
    Flex,
    /// LibTorch through tch (feature `tch`), CPU or CUDA.
    Tch,
    /// Burn's CUDA backend (feature `cuda`).
    Cuda,
}

impl Backend {
    /// Every backend, the default first.
    pub const ALL: [Self; 3] = [Backend::Flex, Backend::Tch, Backend::Cuda];

    /// The config spelling and cargo feature name.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Tch => "tch",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this binary was built with the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Tch => cfg!(feature = "tch"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// Backends compiled into this binary.
    pub fn compiled() -> Vec<Backend> {
        [Backend::Flex, Backend::Tch, Backend::Cuda].into_iter().filter(|b| b.is_compiled()).collect()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = EncoderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flex" => Ok(Backend::Flex),
            "tch" => Ok(Backend::Tch),
            "cuda" => Ok(Backend::Cuda),
            other => Err(EncoderError::Config(format!(
                "backend {other:?} is unknown: expected \"flex\", \"tch\" or \"cuda\""
            ))),
        }
    }
}

/// Float precision of the encoder's weights and activations. Inputs arrive
/// and features leave as float32 whatever the precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// float32 (default; what timm parity is checked in).
    #[default]
    F32,
    /// bfloat16: float32's range, 8 mantissa bits; the usual GPU choice.
    Bf16,
    /// IEEE float16: 11 mantissa bits, range up to 65 504.
    F16,
}

impl Precision {
    /// Every precision, the default first.
    pub const ALL: [Self; 3] = [Precision::F32, Precision::Bf16, Precision::F16];

    /// The config spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }

    /// Burn's float type.
    #[cfg(feature = "burn")]
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// The CPU.
    Cpu,
    /// CUDA device `N`.
    Cuda(usize),
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::Cpu => f.write_str("cpu"),
            DeviceKind::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceKind {
    type Err = EncoderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EncoderError::Config(format!("device {s:?} is unknown: expected \"cpu\", \"cuda\" or \"cuda:N\""));
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(0)),
            _ => s.strip_prefix("cuda:").and_then(|i| i.parse().ok()).map(DeviceKind::Cuda).ok_or_else(bad),
        }
    }
}

/// The Burn device for a backend and device kind, or an error that says
/// which feature to build with.
#[cfg(feature = "burn")]
pub fn burn_device(backend: Backend, device: DeviceKind) -> Result<Device, EncoderError> {
    if !backend.is_compiled() {
        let compiled: Vec<&str> = Backend::compiled().iter().map(|b| b.name()).collect();
        return Err(EncoderError::Backend(format!(
            "backend \"{backend}\" is not compiled into this binary (it has: {}); rebuild with \
             `--features {backend}` (`cargo xtask run CONFIG` does this from the config's backend)",
            compiled.join(", ")
        )));
    }
    match (backend, device) {
        #[cfg(feature = "flex")]
        (Backend::Flex, DeviceKind::Cpu) => Ok(Device::flex()),
        #[cfg(feature = "tch")]
        #[allow(deprecated)] // burn-tch is deprecated upstream; the design card asks for LibTorch.
        (Backend::Tch, DeviceKind::Cpu) => Ok(Device::libtorch()),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        (Backend::Tch, DeviceKind::Cuda(i)) => Ok(Device::libtorch_cuda(i)),
        #[cfg(feature = "cuda")]
        (Backend::Cuda, DeviceKind::Cuda(i)) => Ok(Device::cuda(i)),
        (backend, device) => Err(EncoderError::Backend(format!(
            "backend \"{backend}\" cannot run on device \"{device}\": flex runs on \"cpu\", tch on \"cpu\" or \
             \"cuda:N\", cuda on \"cuda:N\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_backends_and_devices() {
        assert_eq!("tch".parse::<Backend>().unwrap(), Backend::Tch);
        assert!("torch".parse::<Backend>().unwrap_err().to_string().contains("expected \"flex\", \"tch\" or \"cuda\""));
        assert_eq!("cuda:3".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(3));
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        assert!("gpu".parse::<DeviceKind>().is_err());
        assert!("cuda:x".parse::<DeviceKind>().is_err());
    }

    #[test]
    #[cfg(feature = "burn")]
    fn unusable_combinations_say_what_to_do() {
        let err = burn_device(Backend::Flex, DeviceKind::Cuda(0)).unwrap_err().to_string();
        assert!(err.contains("flex runs on \"cpu\""), "{err}");
        if !Backend::Cuda.is_compiled() {
            let err = burn_device(Backend::Cuda, DeviceKind::Cuda(0)).unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
