//! Autotuning per adapter: for each case a program is about to run (its
//! GEMMs, [`GemmCase`], and its convolutions' passes, [`ConvCase`]), every
//! configuration the adapter can run is checked against the built-in one
//! and timed once, the fastest is kept in a cache file per adapter
//! ([`cache`]) and used when the program's dispatches are built
//! ([`TuneTable`]).
//!
//! A kernel family is a case type with a stable key (`gemm …`, `conv …`),
//! its candidates and labels (`kernels::gemm::candidates` and
//! `GemmConfig::label`; `ConvMethod::candidates` and `ConvMethod::label`),
//! a tuning routine ([`gemm::tune_case`], [`conv::tune_case`]) and a map in
//! [`TuneTable`]; the families share the cache and its entries.
//!
//! `GDL_GPU_TUNE=off` ([`Policy::from_env`]) runs the built-in choice
//! without reading or writing the cache.

pub mod cache;
pub mod conv;
pub mod gemm;

use std::collections::HashMap;

pub use cache::{Entry, TuneCache};
pub use conv::{ConvCase, ConvResult};
pub use gemm::{GemmCase, GemmResult, Outcome};

use crate::gpu::{Gpu, Result};
use crate::kernels::conv::{Conv2dGeom, ConvMethod, ConvPass};
use crate::kernels::gemm::{candidates, GemmConfig, GemmShape};

/// The variable that turns tuning off.
pub const TUNE_ENV: &str = "GDL_GPU_TUNE";

/// What a run does about kernel configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The built-in choice; the cache is neither read nor written.
    BuiltIn,
    /// The cache's winners where it has them, the built-in choice elsewhere.
    Cached,
    /// Tune the cases the cache lacks, keep them, and use them.
    TuneMissing,
}

/// `GDL_GPU_TUNE` holds something other than `off` or `on`.
#[derive(Debug, thiserror::Error)]
#[error("{TUNE_ENV}={value:?}: expected \"off\" (the built-in kernel choice, no cache) or \"on\"")]
pub struct BadTuneEnv {
    /// The variable's value.
    pub value: String,
}

impl Policy {
    /// `wanted`, or [`Policy::BuiltIn`] under `GDL_GPU_TUNE=off`.
    pub fn from_env(wanted: Policy) -> std::result::Result<Policy, BadTuneEnv> {
        match std::env::var(TUNE_ENV) {
            Err(_) => Ok(wanted),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "off" | "0" | "false" => Ok(Policy::BuiltIn),
                "on" | "1" | "true" | "" => Ok(wanted),
                _ => Err(BadTuneEnv { value: v }),
            },
        }
    }
}

/// The configuration of each tuned case; every other case gets the
/// built-in choice.
#[derive(Clone, Debug, Default)]
pub struct TuneTable {
    gemm: HashMap<GemmCase, GemmConfig>,
    conv: HashMap<ConvCase, ConvMethod>,
}

impl TuneTable {
    /// The configuration for a GEMM instruction.
    pub fn gemm(&self, gpu: &Gpu, shape: GemmShape, bias: bool, accumulate: bool) -> GemmConfig {
        self.tuned_gemm(GemmCase::new(shape, bias, accumulate))
            .unwrap_or_else(|| GemmConfig::default_for(gpu, shape))
    }

    /// The tuned configuration of `case`, if it has one.
    pub fn tuned_gemm(&self, case: GemmCase) -> Option<GemmConfig> {
        self.gemm.get(&case).copied()
    }

    /// How `pass` of the convolution `geom` runs, and the GEMM
    /// configuration of its explicit method (the built-in one: the
    /// convolutions' GEMM shapes are not tuned as GEMMs).
    pub fn conv(&self, gpu: &Gpu, geom: &Conv2dGeom, pass: ConvPass) -> (ConvMethod, GemmConfig) {
        let case = ConvCase { geom: *geom, pass };
        let method = self
            .tuned_conv(case)
            .unwrap_or_else(|| ConvMethod::builtin(gpu, geom, pass));
        (method, GemmConfig::default_for(gpu, pass.gemm_shape(geom)))
    }

    /// The tuned method of `case`, if it has one.
    pub fn tuned_conv(&self, case: ConvCase) -> Option<ConvMethod> {
        self.conv.get(&case).copied()
    }
}

/// The cases of one or more programs, each once, in program order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cases {
    /// The GEMMs.
    pub gemm: Vec<GemmCase>,
    /// The convolutions' passes.
    pub conv: Vec<ConvCase>,
}

impl Cases {
    /// Adds `other`'s cases that are new.
    pub fn extend(&mut self, other: Cases) {
        for c in other.gemm {
            if !self.gemm.contains(&c) {
                self.gemm.push(c);
            }
        }
        for c in other.conv {
            if !self.conv.contains(&c) {
                self.conv.push(c);
            }
        }
    }

    /// Cases in all.
    pub fn len(&self) -> usize {
        self.gemm.len() + self.conv.len()
    }

    /// No case at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`Tuner::tune`] found.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// One per GEMM case.
    pub gemm: Vec<GemmResult>,
    /// One per convolution case.
    pub conv: Vec<ConvResult>,
}

impl Results {
    /// How the times were taken (the first result's clock).
    pub fn clock(&self) -> Option<crate::gpu::timing::Clock> {
        self.gemm
            .first()
            .map(|r| r.clock)
            .or_else(|| self.conv.first().map(|r| r.clock))
    }
}

/// The tuner of one device: its cache (unless tuning is off) and the table
/// of the cases resolved so far.
#[derive(Debug)]
pub struct Tuner {
    policy: Policy,
    cache: Option<TuneCache>,
    table: TuneTable,
}

impl Tuner {
    /// A tuner following `policy` with the cache in [`cache::cache_dir`];
    /// the cache is read unless the policy is [`Policy::BuiltIn`].
    pub fn new(gpu: &Gpu, policy: Policy) -> Self {
        Self::in_dir(gpu, policy, cache::cache_dir().as_deref())
    }

    /// [`Tuner::new`] with the cache in `dir` (None: nothing kept).
    pub fn in_dir(gpu: &Gpu, policy: Policy, dir: Option<&std::path::Path>) -> Self {
        Tuner {
            policy,
            cache: (policy != Policy::BuiltIn).then(|| TuneCache::open(gpu, dir)),
            table: TuneTable::default(),
        }
    }

    /// Its policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The cache file, where there is one.
    pub fn cache_path(&self) -> Option<&std::path::Path> {
        self.cache.as_ref().and_then(|c| c.path.as_deref())
    }

    /// The table of the cases prepared so far.
    pub fn table(&self) -> &TuneTable {
        &self.table
    }

    /// Takes the cache's winners for `cases` into the table; returns the
    /// cases it has no usable entry for, each once. An entry naming a
    /// configuration this adapter cannot run for its case is dropped with
    /// a warning.
    fn resolve(&mut self, gpu: &Gpu, cases: &Cases) -> Cases {
        let mut missing = Cases::default();
        let Some(cache) = &mut self.cache else {
            return missing;
        };
        let mut take =
            |key: String, labels: Vec<String>| -> Option<std::result::Result<usize, ()>> {
                let e = cache.get(&key)?;
                match labels.iter().position(|l| *l == e.winner) {
                    Some(i) => Some(Ok(i)),
                    None => {
                        let why = format!(
                            "{:?} is not a configuration this adapter runs for it",
                            e.winner
                        );
                        cache.reject(&key, &why);
                        Some(Err(()))
                    }
                }
            };
        for &case in &cases.gemm {
            if self.table.gemm.contains_key(&case) || missing.gemm.contains(&case) {
                continue;
            }
            let all = candidates(gpu, case.shape);
            match take(case.key(), all.iter().map(GemmConfig::label).collect()) {
                Some(Ok(i)) => {
                    self.table.gemm.insert(case, all[i]);
                }
                _ => missing.gemm.push(case),
            }
        }
        for &case in &cases.conv {
            if self.table.conv.contains_key(&case) || missing.conv.contains(&case) {
                continue;
            }
            let all = ConvMethod::candidates(gpu, &case.geom, case.pass);
            match take(
                case.key(),
                all.iter().map(|m| m.label().to_owned()).collect(),
            ) {
                Some(Ok(i)) => {
                    self.table.conv.insert(case, all[i]);
                }
                _ => missing.conv.push(case),
            }
        }
        missing
    }

    /// Makes the table cover `cases`: cached winners, and under
    /// [`Policy::TuneMissing`] the others tuned now (saying so in one line
    /// on stderr) and saved; the rest keep the built-in choice.
    pub fn prepare(&mut self, gpu: &Gpu, cases: &Cases) -> Result<&TuneTable> {
        let missing = self.resolve(gpu, cases);
        if self.policy == Policy::TuneMissing && !missing.is_empty() {
            let t = std::time::Instant::now();
            let place = match self.cache_path() {
                Some(p) => format!("results cached in {}", p.display()),
                None => "no cache folder: not kept".into(),
            };
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            let mut what = Vec::new();
            if !missing.gemm.is_empty() {
                let n = missing.gemm.len();
                what.push(format!("{n} GEMM shape{}", plural(n)));
            }
            if !missing.conv.is_empty() {
                let n = missing.conv.len();
                what.push(format!(
                    "{n} convolution pass{}",
                    if n == 1 { "" } else { "es" }
                ));
            }
            eprint!(
                "tuning {} on {} (not in the cache yet; {place}; GDL_GPU_TUNE=off skips this)...",
                what.join(" and "),
                gpu.name()
            );
            self.tune(gpu, &missing, &mut |_, _| {})?;
            eprintln!(" done in {:.1} s", t.elapsed().as_secs_f64());
        }
        Ok(&self.table)
    }

    /// Tunes every one of `cases` (cached or not), keeps the winners in the
    /// table and the cache, and saves the cache. `progress(done, case)` is
    /// called before each case with its description. The convolutions come
    /// after the GEMMs, and a forward pass before the weight gradient of
    /// its geometry, which times the im2col build only where the forward
    /// pass's method does not leave the matrix behind.
    pub fn tune(
        &mut self,
        gpu: &Gpu,
        cases: &Cases,
        progress: &mut dyn FnMut(usize, &str),
    ) -> Result<Results> {
        let mut out = Results::default();
        for (i, &case) in cases.gemm.iter().enumerate() {
            progress(i, &case.describe());
            let r = gemm::tune_case(gpu, case)?;
            self.table.gemm.insert(case, r.winner);
            self.keep(
                case.key(),
                (r.winner.label(), r.winner_s),
                (r.builtin.label(), r.builtin_s),
                r.trials.len(),
                r.clock,
            );
            out.gemm.push(r);
        }
        let mut conv_cases = cases.conv.clone();
        conv_cases.sort_by_key(|c| c.pass != ConvPass::Forward);
        for (i, &case) in conv_cases.iter().enumerate() {
            progress(cases.gemm.len() + i, &case.describe());
            let (forward, _) = self.table.conv(gpu, &case.geom, ConvPass::Forward);
            let r = conv::tune_case(gpu, case, forward.leaves_cols())?;
            self.table.conv.insert(case, r.winner);
            self.keep(
                case.key(),
                (r.winner.label().to_owned(), r.winner_s),
                (r.builtin.label().to_owned(), r.builtin_s),
                r.trials.len(),
                r.clock,
            );
            out.conv.push(r);
        }
        if let Some(cache) = &self.cache {
            cache.save();
        }
        Ok(out)
    }

    /// Records a winner in the cache, where there is one.
    fn keep(
        &mut self,
        key: String,
        (winner, winner_s): (String, f64),
        (builtin, builtin_s): (String, f64),
        candidates: usize,
        clock: crate::gpu::timing::Clock,
    ) {
        if let Some(cache) = &mut self.cache {
            cache.insert(
                key,
                Entry {
                    winner,
                    winner_us: winner_s * 1e6,
                    builtin,
                    builtin_us: builtin_s * 1e6,
                    candidates,
                    clock: clock.name().to_owned(),
                },
            );
        }
    }
}

/// The distinct cases of `program`, in program order: its GEMMs and its
/// convolutions' passes.
pub fn program_cases(program: &crate::graph::program::Program) -> Cases {
    use crate::graph::program::Inst;
    let mut out = Cases::default();
    for inst in &program.insts {
        let (gemm, conv) = match *inst {
            Inst::Gemm {
                shape,
                bias,
                accumulate,
                ..
            } => (Some(GemmCase::new(shape, bias.is_some(), accumulate)), None),
            Inst::ConvForward { geom, .. } => (None, Some((geom, ConvPass::Forward))),
            Inst::ConvWeightGrad { geom, .. } => (None, Some((geom, ConvPass::WeightGrad))),
            Inst::ConvInputGrad { geom, .. } => (None, Some((geom, ConvPass::InputGrad))),
            _ => (None, None),
        };
        out.extend(Cases {
            gemm: gemm.into_iter().collect(),
            conv: conv
                .map(|(geom, pass)| ConvCase { geom, pass })
                .into_iter()
                .collect(),
        });
    }
    out
}
