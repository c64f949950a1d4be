//! Buffer planning, once per program: temporaries whose lifetimes (first to
//! last instruction that touches them) do not overlap share a slot. A
//! tensor defined by an instruction never shares with one read by it, since
//! slots are freed only after their tensor's last instruction has passed.

use super::program::{Home, Program, TensorId};

/// Which buffer slot each temporary uses.
#[derive(Clone, Debug)]
pub struct Plan {
    /// For each tensor, its slot (temporaries only).
    pub slot_of: Vec<Option<usize>>,
    /// Bytes of each slot (the largest tensor it holds, rounded to 16).
    pub slot_bytes: Vec<u64>,
}

impl Plan {
    /// Plans `p`'s temporaries.
    pub fn new(p: &Program) -> Plan {
        let nt = p.tensors.len();
        let mut first = vec![usize::MAX; nt];
        let mut last = vec![0usize; nt];
        for (i, inst) in p.insts.iter().enumerate() {
            for t in inst.uses() {
                first[t] = first[t].min(i);
                last[t] = last[t].max(i);
            }
        }
        // The outputs the host reads after a step stay live to the end.
        let mut keep: Vec<TensorId> = vec![p.logits];
        keep.extend(p.probs);
        for t in keep {
            if first[t] != usize::MAX {
                last[t] = p.insts.len();
            }
        }
        let bytes = |t: TensorId| ((p.tensors[t].len * 4).max(16) as u64).div_ceil(16) * 16;

        let mut slot_of = vec![None; nt];
        let mut slot_bytes: Vec<u64> = Vec::new();
        let mut busy_until: Vec<usize> = Vec::new(); // last instruction of the slot's tensor
        let mut order: Vec<TensorId> = (0..nt)
            .filter(|&t| p.tensors[t].home == Home::Temp && first[t] != usize::MAX)
            .collect();
        order.sort_by_key(|&t| (first[t], std::cmp::Reverse(bytes(t))));
        for t in order {
            let need = bytes(t);
            // Best fit among free slots: the smallest that holds it, else the largest (grown).
            let free: Vec<usize> = (0..slot_bytes.len())
                .filter(|&s| busy_until[s] < first[t])
                .collect();
            let fit = free
                .iter()
                .copied()
                .filter(|&s| slot_bytes[s] >= need)
                .min_by_key(|&s| slot_bytes[s])
                .or_else(|| free.iter().copied().max_by_key(|&s| slot_bytes[s]));
            let s = match fit {
                Some(s) => s,
                None => {
                    slot_bytes.push(0);
                    busy_until.push(0);
                    slot_bytes.len() - 1
                }
            };
            slot_bytes[s] = slot_bytes[s].max(need);
            busy_until[s] = last[t];
            slot_of[t] = Some(s);
        }
        Plan {
            slot_of,
            slot_bytes,
        }
    }

    /// Bytes of all slots together.
    pub fn temp_bytes(&self) -> u64 {
        self.slot_bytes.iter().sum()
    }
}
