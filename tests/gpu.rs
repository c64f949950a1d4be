//! The GPU context's error paths: what the adapter cannot do is a typed
//! error naming the buffer and the limit, never a panic inside wgpu.

use gdl_gpu::{Gpu, GpuError};

#[test]
fn buffer_over_the_binding_limit_is_a_clear_error() {
    let gpu = Gpu::new().expect("an adapter");
    let limit = gpu.limits.max_storage_buffer_binding_size;
    let err = gpu
        .storage("activations", limit + 16)
        .expect_err("over the limit");
    match &err {
        GpuError::BufferTooLarge {
            label, limit: l, ..
        } => {
            assert_eq!(label, "activations");
            assert_eq!(*l, limit);
        }
        other => panic!("expected BufferTooLarge, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("activations") && msg.contains(&limit.to_string()),
        "{msg}"
    );
    // The device is still usable afterwards.
    let ok = gpu.storage("small", 64).unwrap();
    assert_eq!(gpu.read_f32(&ok, 16).unwrap(), vec![0.0; 16]);
}

#[test]
fn an_unknown_adapter_name_lists_the_available_ones() {
    let opts = gdl_gpu::gpu::GpuOptions {
        adapter: gdl_gpu::gpu::AdapterChoice::from_name(Some("no-such-gpu-9000")),
        ..Default::default()
    };
    let err = Gpu::with_options(&opts).err().expect("no such adapter");
    let msg = err.to_string();
    assert!(
        msg.contains("\"no-such-gpu-9000\"") && msg.contains("available adapters: "),
        "{msg}"
    );
    // Every adapter that is there is named.
    for a in gdl_gpu::gpu::adapter::enumerate(&Default::default()) {
        assert!(msg.contains(&a.get_info().name), "{msg}");
    }
}

/// Only wgpu's `Cpu` device type (lavapipe, llvmpipe, SwiftShader, WARP)
/// counts as a software adapter, whatever the name says.
#[test]
fn software_means_the_cpu_device_type() {
    let real = Gpu::new().expect("an adapter").info;
    use wgpu::DeviceType::*;
    for (t, software) in [
        (Cpu, true),
        (DiscreteGpu, false),
        (IntegratedGpu, false),
        (VirtualGpu, false),
        (Other, false),
    ] {
        let info = wgpu::AdapterInfo {
            device_type: t,
            name: "llvmpipe".into(),
            ..real.clone()
        };
        assert_eq!(gdl_gpu::gpu::adapter::is_software(&info), software, "{t:?}");
    }
}

#[test]
fn disable_lists_name_only_features_gdl_gpu_requests() {
    use gdl_gpu::gpu::{parse_disable, WANTED_FEATURES};
    assert_eq!(parse_disable("").unwrap(), wgpu::Features::empty());
    assert_eq!(
        parse_disable(" subgroups , timestamps ").unwrap(),
        wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY
    );
    assert_eq!(
        parse_disable("subgroups,timestamps,timestamps-inside-passes").unwrap(),
        WANTED_FEATURES
    );
    // No shader uses f16, so it is neither requested nor a name here.
    assert!(!WANTED_FEATURES.contains(wgpu::Features::SHADER_F16));
    let err = parse_disable("subgroups,f16").unwrap_err().to_string();
    assert!(
        err.contains("\"f16\"") && err.contains("GDL_GPU_DISABLE"),
        "{err}"
    );
}
