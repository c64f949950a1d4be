//! Autotuning per adapter: for each case a program is about to run (today
//! its GEMMs, [`GemmCase`]), every configuration the adapter can run is
//! checked against the built-in one and timed once, the fastest is kept in
//! a cache file per adapter ([`cache`]) and used when the program's
//! dispatches are built ([`TuneTable`]).
//!
//! A kernel family is a case type with a stable key (`gemm …`), its
//! candidates and labels (`kernels::gemm::candidates`,
//! `GemmConfig::label`) and a tuning routine ([`gemm::tune_case`]); a
//! second family (convolution: im2col or implicit GEMM) adds the same three
//! and a map in [`TuneTable`], and shares the cache and its entries.
//!
//! `GDL_GPU_TUNE=off` ([`Policy::from_env`]) runs the built-in choice
//! without reading or writing the cache.

pub mod cache;
pub mod gemm;

use std::collections::HashMap;

pub use cache::{Entry, TuneCache};
pub use gemm::{GemmCase, GemmResult, Outcome};

use crate::gpu::{Gpu, Result};
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
    /// configuration this adapter cannot run for its shape is dropped with
    /// a warning.
    fn resolve(&mut self, gpu: &Gpu, cases: &[GemmCase]) -> Vec<GemmCase> {
        let mut missing: Vec<GemmCase> = Vec::new();
        let Some(cache) = &mut self.cache else {
            return missing;
        };
        for &case in cases {
            if self.table.gemm.contains_key(&case) || missing.contains(&case) {
                continue;
            }
            let key = case.key();
            let found = cache.get(&key).map(|e| {
                candidates(gpu, case.shape)
                    .into_iter()
                    .find(|c| c.label() == e.winner)
                    .ok_or_else(|| e.winner.clone())
            });
            match found {
                Some(Ok(config)) => {
                    self.table.gemm.insert(case, config);
                }
                Some(Err(label)) => {
                    cache.reject(
                        &key,
                        &format!("{label:?} is not a configuration this adapter runs for it"),
                    );
                    missing.push(case);
                }
                None => missing.push(case),
            }
        }
        missing
    }

    /// Makes the table cover `cases`: cached winners, and under
    /// [`Policy::TuneMissing`] the others tuned now (saying so in one line
    /// on stderr) and saved; the rest keep the built-in choice.
    pub fn prepare(&mut self, gpu: &Gpu, cases: &[GemmCase]) -> Result<&TuneTable> {
        let missing = self.resolve(gpu, cases);
        if self.policy == Policy::TuneMissing && !missing.is_empty() {
            let t = std::time::Instant::now();
            let place = match self.cache_path() {
                Some(p) => format!("results cached in {}", p.display()),
                None => "no cache folder: not kept".into(),
            };
            eprint!(
                "tuning {} GEMM shape{} on {} (not in the cache yet; {place}; GDL_GPU_TUNE=off skips this)...",
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                gpu.name()
            );
            self.tune(gpu, &missing, &mut |_, _| {})?;
            eprintln!(" done in {:.1} s", t.elapsed().as_secs_f64());
        }
        Ok(&self.table)
    }

    /// Tunes every one of `cases` (cached or not), keeps the winners in the
    /// table and the cache, and saves the cache. `progress(done, case)` is
    /// called before each case.
    pub fn tune(
        &mut self,
        gpu: &Gpu,
        cases: &[GemmCase],
        progress: &mut dyn FnMut(usize, &GemmCase),
    ) -> Result<Vec<GemmResult>> {
        let mut out = Vec::with_capacity(cases.len());
        for (i, &case) in cases.iter().enumerate() {
            progress(i, &case);
            let r = gemm::tune_case(gpu, case)?;
            self.table.gemm.insert(case, r.winner);
            if let Some(cache) = &mut self.cache {
                cache.insert(
                    case.key(),
                    Entry {
                        winner: r.winner.label(),
                        winner_us: r.winner_s * 1e6,
                        builtin: r.builtin.label(),
                        builtin_us: r.builtin_s * 1e6,
                        candidates: r.trials.len(),
                        clock: r.clock.name().to_owned(),
                    },
                );
            }
            out.push(r);
        }
        if let Some(cache) = &self.cache {
            cache.save();
        }
        Ok(out)
    }
}

/// The distinct GEMM cases of `program`, in program order.
pub fn program_cases(program: &crate::graph::program::Program) -> Vec<GemmCase> {
    let mut out = Vec::new();
    for inst in &program.insts {
        if let crate::graph::program::Inst::Gemm {
            shape,
            bias,
            accumulate,
            ..
        } = *inst
        {
            let case = GemmCase::new(shape, bias.is_some(), accumulate);
            if !out.contains(&case) {
                out.push(case);
            }
        }
    }
    out
}
