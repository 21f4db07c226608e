//! `arch = "torchscript"`: any PyTorch model a user can `torch.jit.trace`
//! or `torch.jit.script`, run by LibTorch through tch (the `tch` feature),
//! on the CPU or `cuda:N` — scored without porting it to Burn.
//!
//! The module is loaded onto the device and put in eval mode; one forward
//! pass on a zero batch of the run's sample shape gives the output width
//! (and rejects a module that does not take that shape, naming the file).
//! Outputs are read as timm's `forward` gives them with `num_classes=0`:
//! `[b, D]`, or anything that flattens to it per sample (`[b, C, H, W]`);
//! a tuple or list output contributes its first tensor. Features come back
//! as float32 on the host.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::{DeviceKind, Encoder, EncoderError};

/// A TorchScript module as an [`Encoder`].
pub struct TorchScriptEncoder {
    module: CModule,
    device: Device,
    shape: Vec<usize>,
    output_dim: usize,
    path: PathBuf,
}

impl std::fmt::Debug for TorchScriptEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchScriptEncoder")
            .field("path", &self.path)
            .field("device", &self.device)
            .field("shape", &self.shape)
            .field("output_dim", &self.output_dim)
            .finish()
    }
}

fn tch_device(device: DeviceKind) -> Result<Device, EncoderError> {
    match device {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda(i) => {
            let count = tch::Cuda::device_count();
            if i64::try_from(i).is_ok_and(|i| i < count) {
                Ok(Device::Cuda(i))
            } else {
                Err(EncoderError::Backend(format!(
                    "device cuda:{i}: LibTorch sees {count} CUDA device(s) (a CPU-only LibTorch sees none); use \
                     device = \"cpu\" or a CUDA build of LibTorch"
                )))
            }
        }
    }
}

impl TorchScriptEncoder {
    /// Loads `path` onto `device` for samples of `shape`.
    pub fn load(path: &Path, shape: &[usize], device: DeviceKind) -> Result<Self, EncoderError> {
        let file_error = |message: String| EncoderError::WeightsFile { path: path.to_path_buf(), message };
        if !path.is_file() {
            return Err(file_error("no such file (expected a torch.jit.trace or torch.jit.script output)".into()));
        }
        let device = tch_device(device)?;
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            file_error(format!("is not a TorchScript module LibTorch can load ({e}); save one with torch.jit.save"))
        })?;
        module.set_eval();
        let mut encoder = Self { module, device, shape: shape.to_vec(), output_dim: 0, path: path.to_path_buf() };
        let width: usize = shape.iter().product();
        let probe = Array2::<f32>::zeros((1, width));
        let features = encoder.forward(probe.view()).map_err(|e| {
            file_error(format!("its forward pass on one input of shape {:?} failed: {e}", [&[1], shape].concat()))
        })?;
        encoder.output_dim = features.ncols();
        Ok(encoder)
    }

    fn forward(&self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError> {
        let n = batch.nrows();
        let contiguous = batch.as_standard_layout();
        let values = contiguous.as_slice().expect("standard layout is contiguous");
        let dims: Vec<i64> = std::iter::once(n).chain(self.shape.iter().copied()).map(|d| d as i64).collect();
        let input = Tensor::from_slice(values).view(dims.as_slice()).to_device(self.device);
        let fail = |m: String| EncoderError::Backend(format!("TorchScript module {}: {m}", self.path.display()));
        let output =
            tch::no_grad(|| self.module.forward_is(&[IValue::Tensor(input)])).map_err(|e| fail(e.to_string()))?;
        let tensor = first_tensor(output).ok_or_else(|| fail("its output holds no tensor".into()))?;
        let size = tensor.size();
        if size.first() != Some(&(n as i64)) {
            return Err(fail(format!("its output has shape {size:?} for a batch of {n}: expected [{n}, D]")));
        }
        let features = tensor.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
        let flat = Vec::<f32>::try_from(&features).map_err(|e: tch::TchError| fail(e.to_string()))?;
        let dim = flat.len().checked_div(n).unwrap_or(0);
        Array2::from_shape_vec((n, dim), flat).map_err(|e| fail(e.to_string()))
    }
}

fn first_tensor(value: IValue) -> Option<Tensor> {
    match value {
        IValue::Tensor(t) => Some(t),
        IValue::TensorList(list) => list.into_iter().next(),
        IValue::Tuple(values) | IValue::GenericList(values) => values.into_iter().find_map(first_tensor),
        _ => None,
    }
}

impl Encoder for TorchScriptEncoder {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    fn output_dim(&self) -> usize {
        self.output_dim
    }

    fn describe(&self) -> String {
        let device = match self.device {
            Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".into(),
        };
        format!("TorchScript {} (LibTorch, {device}, D = {})", self.path.display(), self.output_dim)
    }

    fn encode(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError> {
        self.check_width(&batch)?;
        let features = self.forward(batch)?;
        if features.ncols() != self.output_dim {
            return Err(EncoderError::Backend(format!(
                "TorchScript module {}: gave {} features per sample, {} on its first pass",
                self.path.display(),
                features.ncols(),
                self.output_dim
            )));
        }
        Ok(features)
    }
}
