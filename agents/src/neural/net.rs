//! The networks: MLP, GRU, LSTM and a small Transformer encoder over an input window `[batch, window,
//! features]`, each ending in a linear head that gives `[batch, rows, outputs]` (rows: horizons × targets).
//!
//! `forward` reads no shape from a tensor into Rust (every reshape keeps the batch dimension as `-1`), so a
//! traced TorchScript module accepts any batch size.

use tch::nn::{self, Module, RNN};
use tch::{Kind, Tensor};

use super::spec::{Architecture, ModelSpec};

/// A network built in a [`nn::Path`] of a `VarStore` (variable names follow PyTorch's: `gru.weight_ih_l0`,
/// `head.bias`, …).
#[derive(Debug)]
pub struct Net {
    body: Body,
    head: nn::Linear,
    window: i64,
    width: i64,
    horizons: i64,
    outputs: i64,
}

#[derive(Debug)]
enum Body {
    Mlp(Vec<nn::Linear>),
    Gru(nn::GRU, i64, i64),
    Lstm(nn::LSTM, i64, i64),
    Transformer(Transformer),
}

#[derive(Debug)]
struct Transformer {
    input: nn::Linear,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    norm: nn::LayerNorm,
}

#[derive(Debug)]
struct EncoderLayer {
    norm1: nn::LayerNorm,
    qkv: nn::Linear,
    out: nn::Linear,
    norm2: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
    heads: i64,
    d_model: i64,
    window: i64,
}

impl EncoderLayer {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (h, d, l) = (self.heads, self.d_model, self.window);
        let dh = d / h;
        // [B, L, 3d] → [3, B, heads, L, dh]
        let qkv = x.apply(&self.norm1).apply(&self.qkv).view([-1, l, 3, h, dh]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let attention = (q.matmul(&k.transpose(-2, -1)) / (dh as f64).sqrt()).softmax(-1, Kind::Float);
        let mixed = attention.matmul(&v).transpose(1, 2).reshape([-1, l, d]);
        let x = x + mixed.apply(&self.out);
        let ff = x.apply(&self.norm2).apply(&self.ff1).relu().apply(&self.ff2);
        x + ff
    }
}

fn zeros_state(x: &Tensor, layers: i64, hidden: i64) -> Tensor {
    // [layers, B, hidden] of zeros, with B taken from `x` inside the graph (not read into Rust).
    (x.select(2, 0).select(1, 0).view([1, -1, 1]) * 0.0).expand([layers, -1, hidden], false).contiguous()
}

impl Net {
    /// Builds the network's variables under `p`.
    pub fn new(p: &nn::Path, spec: &ModelSpec) -> Net {
        let width = spec.width() as i64;
        let window = spec.window_steps as i64;
        let horizons = spec.output_rows() as i64;
        let outputs = spec.output.width() as i64;
        let (body, last) = match &spec.architecture {
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut d = window * width;
                for (i, h) in hidden.iter().enumerate() {
                    layers.push(nn::linear(p / format!("layer{i}"), d, *h as i64, Default::default()));
                    d = *h as i64;
                }
                (Body::Mlp(layers), d)
            }
            Architecture::Gru { hidden, layers } => {
                let (h, n) = (*hidden as i64, *layers as i64);
                let cfg = nn::RNNConfig { num_layers: n, batch_first: true, ..Default::default() };
                (Body::Gru(nn::gru(p / "gru", width, h, cfg), n, h), h)
            }
            Architecture::Lstm { hidden, layers } => {
                let (h, n) = (*hidden as i64, *layers as i64);
                let cfg = nn::RNNConfig { num_layers: n, batch_first: true, ..Default::default() };
                (Body::Lstm(nn::lstm(p / "lstm", width, h, cfg), n, h), h)
            }
            Architecture::Transformer { d_model, heads, layers, feed_forward } => {
                let d = *d_model as i64;
                let ff = feed_forward.map_or(4 * d, |f| f as i64);
                let t = p / "transformer";
                let ln = || nn::LayerNormConfig::default();
                let enc = (0..*layers)
                    .map(|i| {
                        let q = &t / format!("layer{i}");
                        EncoderLayer {
                            norm1: nn::layer_norm(&q / "norm1", vec![d], ln()),
                            qkv: nn::linear(&q / "qkv", d, 3 * d, Default::default()),
                            out: nn::linear(&q / "out", d, d, Default::default()),
                            norm2: nn::layer_norm(&q / "norm2", vec![d], ln()),
                            ff1: nn::linear(&q / "ff1", d, ff, Default::default()),
                            ff2: nn::linear(&q / "ff2", ff, d, Default::default()),
                            heads: *heads as i64,
                            d_model: d,
                            window,
                        }
                    })
                    .collect();
                let body = Transformer {
                    input: nn::linear(&t / "input", width, d, Default::default()),
                    positions: t.var("positions", &[window, d], nn::Init::Randn { mean: 0.0, stdev: 0.02 }),
                    layers: enc,
                    norm: nn::layer_norm(&t / "norm", vec![d], ln()),
                };
                (Body::Transformer(body), d)
            }
        };
        let head = nn::linear(p / "head", last, horizons * outputs, Default::default());
        Net { body, head, window, width, horizons, outputs }
    }

    /// `[batch, window, features]` (float32) → `[batch, rows, outputs]` (rows: horizons × targets), normalised units.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let last = match &self.body {
            Body::Mlp(layers) => {
                let mut h = x.view([-1, self.window * self.width]);
                for layer in layers {
                    h = h.apply(layer).relu();
                }
                h
            }
            Body::Gru(gru, layers, hidden) => {
                let h0 = nn::GRUState(zeros_state(x, *layers, *hidden));
                let (out, _) = gru.seq_init(x, &h0);
                out.select(1, -1)
            }
            Body::Lstm(lstm, layers, hidden) => {
                let z = zeros_state(x, *layers, *hidden);
                let s = nn::LSTMState((z.shallow_clone(), z));
                let (out, _) = lstm.seq_init(x, &s);
                out.select(1, -1)
            }
            Body::Transformer(t) => {
                let mut h = x.apply(&t.input) + &t.positions;
                for layer in &t.layers {
                    h = layer.forward(&h);
                }
                h.apply(&t.norm).select(1, -1)
            }
        };
        self.head.forward(&last).view([-1, self.horizons, self.outputs])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural::spec::{Input, OutputKind};

    /// `ModelSpec::parameter_count` (used to refuse oversized networks before building them) counts what
    /// `Net::new` really allocates, for every body.
    #[test]
    fn parameter_count_matches_the_built_network() {
        for (architecture, output) in [
            (Architecture::Mlp { hidden: vec![16, 8] }, OutputKind::Point),
            (Architecture::Gru { hidden: 12, layers: 2 }, OutputKind::Gaussian),
            (Architecture::Lstm { hidden: 7, layers: 3 }, OutputKind::Quantiles(vec![0.1, 0.5, 0.9])),
            (Architecture::Transformer { d_model: 8, heads: 2, layers: 2, feed_forward: Some(24) }, OutputKind::Point),
            (Architecture::Transformer { d_model: 8, heads: 4, layers: 1, feed_forward: None }, OutputKind::Gaussian),
        ] {
            let spec = ModelSpec {
                architecture,
                inputs: vec![Input::Rate, Input::TimeOfDay, Input::Backlog],
                window_steps: 6,
                horizon_steps: 3,
                output,
                level: Default::default(),
                targets: crate::neural::spec::default_targets(),
            };
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let _net = Net::new(&vs.root(), &spec);
            let built: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
            assert_eq!(spec.parameter_count() as i64, built, "{:?}", spec.architecture);
        }
    }
}
