//! The canvas drawn by wgpu: `shaders/overlay.wgsl` through an `egui_wgpu` paint callback.
//!
//! [`OverlayRenderer`] (pipeline, samplers, textures) lives in egui-wgpu's callback resources.
//! Each frame the canvas adds one [`OverlayCallback`] holding the [`CanvasFrame`] (the draw
//! list and the `ui_from_image` placement); `prepare` uploads only what changed in the display
//! planes ([`super::sync_textures`]) and writes one small uniform buffer per draw; `paint`
//! issues one 6-vertex draw per entry. Zoom and pan change only the uniforms.

use std::collections::HashMap;

use eframe::egui_wgpu::{self, wgpu};

use super::{CanvasFrame, CanvasTexture, Draw, Uploader, sync_textures};
use crate::app::display::{DisplayImage, LayerPixels, RectInDisplay};

/// Size of the uniform block in `overlay.wgsl` (5 × vec4<f32>).
const UNIFORM_BYTES: u64 = 5 * 16;

/// The paint callback of one canvas frame.
#[derive(Clone, Debug)]
pub struct OverlayCallback(pub CanvasFrame);

struct GpuTexture {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    size: (u32, u32),
    /// Image id (image) or plane version (layers) this texture holds.
    version: u64,
}

/// GPU resources of the canvas, kept in egui-wgpu's callback resources.
pub struct OverlayRenderer {
    /// The image's pipeline (`vs_canvas`, `fs_image`: the image and the background around it).
    image_pipeline: wgpu::RenderPipeline,
    /// The layers' pipeline (`vs_main`, `fs_layer`).
    layer_pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    linear: wgpu::Sampler,
    nearest: wgpu::Sampler,
    blank_image: GpuTexture,
    blank_mask: GpuTexture,
    srgb_target: bool,
    image: Option<GpuTexture>,
    layers: HashMap<u64, GpuTexture>,
    uniforms: Vec<wgpu::Buffer>,
    /// Bind groups of the current frame's draws, in order, and whether each is a layer.
    frame: Vec<(bool, wgpu::BindGroup)>,
}

impl OverlayRenderer {
    /// Builds the pipeline for `render_state`'s target format and registers the renderer in
    /// its callback resources. Returns false (logged) if the shader cannot be used, so the
    /// caller falls back to egui textures.
    pub fn install(render_state: &egui_wgpu::RenderState) -> bool {
        let device = &render_state.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let renderer = Self::new(device, &render_state.queue, render_state.target_format);
        let error = pollster_block_on(scope.pop());
        if let Some(e) = error {
            log::error!("the canvas shader could not be set up ({e}); using the basic renderer");
            return false;
        }
        render_state
            .renderer
            .write()
            .callback_resources
            .insert(renderer);
        true
    }

    fn new(device: &wgpu::Device, queue: &wgpu::Queue, target: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("ldzmask overlay.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../../shaders/overlay.wgsl").into()),
        });
        let texture_entry = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                multisampled: false,
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
            },
            count: None,
        };
        let sampler_entry = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("ldzmask overlay bind group layout"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(UNIFORM_BYTES),
                    },
                    count: None,
                },
                texture_entry(1),
                texture_entry(2),
                sampler_entry(3),
                sampler_entry(4),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("ldzmask overlay pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        // One pipeline per pass: the image over the whole canvas (`vs_canvas`, `fs_image`) and
        // the layers over the image (`vs_main`, `fs_layer`), so each fragment reads one texture.
        let pipeline = |vertex_entry: &str, fragment_entry: &str| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some("ldzmask overlay pipeline"),
                layout: Some(&pipeline_layout),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some(vertex_entry),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState {
                    topology: wgpu::PrimitiveTopology::TriangleList,
                    cull_mode: None,
                    ..Default::default()
                },
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fragment_entry),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: target,
                        blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let image_pipeline = pipeline("vs_canvas", "fs_image");
        let layer_pipeline = pipeline("vs_main", "fs_layer");
        let sampler = |filter: wgpu::FilterMode, label| {
            device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some(label),
                mag_filter: filter,
                min_filter: wgpu::FilterMode::Linear,
                address_mode_u: wgpu::AddressMode::ClampToEdge,
                address_mode_v: wgpu::AddressMode::ClampToEdge,
                ..Default::default()
            })
        };
        let linear = sampler(wgpu::FilterMode::Linear, "ldzmask linear sampler");
        let nearest = sampler(wgpu::FilterMode::Nearest, "ldzmask nearest sampler");
        let blank_image = create_texture(
            device,
            queue,
            wgpu::TextureFormat::Rgba8Unorm,
            (1, 1),
            &[0, 0, 0, 0],
            0,
        );
        let blank_mask =
            create_texture(device, queue, wgpu::TextureFormat::R8Unorm, (1, 1), &[0], 0);
        Self {
            image_pipeline,
            layer_pipeline,
            layout,
            linear,
            nearest,
            blank_image,
            blank_mask,
            srgb_target: target.is_srgb(),
            image: None,
            layers: HashMap::new(),
            uniforms: Vec::new(),
            frame: Vec::new(),
        }
    }
}

impl CanvasTexture for GpuTexture {
    fn version(&self) -> u64 {
        self.version
    }
    fn size(&self) -> (u32, u32) {
        self.size
    }
}

/// Uploads display pixels into wgpu textures.
struct WgpuUploader<'a> {
    device: &'a wgpu::Device,
    queue: &'a wgpu::Queue,
}

impl Uploader for WgpuUploader<'_> {
    type Texture = GpuTexture;

    fn image(&mut self, img: &DisplayImage) -> GpuTexture {
        create_texture(
            self.device,
            self.queue,
            wgpu::TextureFormat::Rgba8Unorm,
            (img.width, img.height),
            &img.rgba,
            img.image_id,
        )
    }

    fn plane(&mut self, _id: u64, plane: &LayerPixels) -> GpuTexture {
        create_texture(
            self.device,
            self.queue,
            wgpu::TextureFormat::R8Unorm,
            (plane.width, plane.height),
            &plane.data,
            plane.version,
        )
    }

    fn update(&mut self, texture: &mut GpuTexture, plane: &LayerPixels, rect: RectInDisplay) {
        let offset = rect.y0 as u64 * u64::from(plane.width) + u64::from(rect.x0);
        self.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture.texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: rect.x0,
                    y: rect.y0,
                    z: 0,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &plane.data,
            wgpu::TexelCopyBufferLayout {
                offset,
                bytes_per_row: Some(plane.width),
                rows_per_image: Some(plane.height),
            },
            wgpu::Extent3d {
                width: rect.width(),
                height: rect.height(),
                depth_or_array_layers: 1,
            },
        );
    }
}

fn create_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    format: wgpu::TextureFormat,
    (width, height): (u32, u32),
    data: &[u8],
    version: u64,
) -> GpuTexture {
    let (width, height) = (width.max(1), height.max(1));
    let size = wgpu::Extent3d {
        width,
        height,
        depth_or_array_layers: 1,
    };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("ldzmask canvas texture"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let bytes_per_pixel = if format == wgpu::TextureFormat::R8Unorm {
        1
    } else {
        4
    };
    let needed = width as usize * height as usize * bytes_per_pixel;
    if data.len() >= needed {
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &data[..needed],
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(width * bytes_per_pixel as u32),
                rows_per_image: Some(height),
            },
            size,
        );
    } else {
        log::warn!(
            "canvas texture data too short ({} < {needed} bytes)",
            data.len()
        );
    }
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    GpuTexture {
        texture,
        view,
        size: (width, height),
        version,
    }
}

/// Waits for a wgpu future (error scopes resolve at once on native backends).
fn pollster_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park_timeout(std::time::Duration::from_millis(5)),
        }
    }
}

impl OverlayCallback {
    /// The uniform block of one draw (layout of `Uniforms` in `overlay.wgsl`).
    fn uniform_bytes(&self, draw: &Draw, srgb_target: bool) -> Vec<u8> {
        let frame = &self.0;
        let c = frame.canvas_in_ui;
        let i = frame.image_in_ui;
        // The image pass paints the canvas background around the image.
        let colour = match draw.layer {
            Some(_) => draw.colour,
            None => frame.background.to_normalized_gamma_f32(),
        };
        let values: [f32; 20] = [
            c.min.x,
            c.min.y,
            c.width().max(1e-3),
            c.height().max(1e-3),
            i.min.x,
            i.min.y,
            i.width().max(1e-3),
            i.height().max(1e-3),
            colour[0],
            colour[1],
            colour[2],
            colour[3],
            0.0, // flags.x, unused: the pipeline (fs_image or fs_layer) tells them apart
            if srgb_target { 1.0 } else { 0.0 },
            draw.outline_px,
            if frame.nearest { 1.0 } else { 0.0 },
            frame.pixels_per_point,
            8.0,
            0.0,
            0.0,
        ];
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }
}

impl egui_wgpu::CallbackTrait for OverlayCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<OverlayRenderer>() else {
            return Vec::new();
        };
        let mut uploader = WgpuUploader { device, queue };
        sync_textures(
            &mut self.0.display.lock(),
            &mut uploader,
            &mut r.image,
            &mut r.layers,
        );
        let draws = &self.0.draws;
        while r.uniforms.len() < draws.len() {
            r.uniforms
                .push(device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("ldzmask overlay uniforms"),
                    size: UNIFORM_BYTES,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
        }
        let mut frame = Vec::with_capacity(draws.len());
        let image_view = r.image.as_ref().map_or(&r.blank_image.view, |t| &t.view);
        for (draw, buffer) in draws.iter().zip(&r.uniforms) {
            let mask_view = match draw.layer {
                Some(id) => match r.layers.get(&id) {
                    Some(t) => &t.view,
                    None => continue, // not composited yet
                },
                None => &r.blank_mask.view,
            };
            queue.write_buffer(buffer, 0, &self.uniform_bytes(draw, r.srgb_target));
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("ldzmask overlay bind group"),
                layout: &r.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: buffer.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::TextureView(image_view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::TextureView(mask_view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: wgpu::BindingResource::Sampler(&r.linear),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: wgpu::BindingResource::Sampler(&r.nearest),
                    },
                ],
            });
            frame.push((draw.layer.is_some(), bind_group));
        }
        r.frame = frame;
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(r) = resources.get::<OverlayRenderer>() else {
            return;
        };
        if r.image.is_none() {
            return;
        }
        for (is_layer, bind_group) in &r.frame {
            render_pass.set_pipeline(if *is_layer {
                &r.layer_pipeline
            } else {
                &r.image_pipeline
            });
            render_pass.set_bind_group(0, bind_group, &[]);
            render_pass.draw(0..6, 0..1);
        }
    }
}
