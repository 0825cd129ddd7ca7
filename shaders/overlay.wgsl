// The ldzmask canvas: the image on the canvas background, then one coloured overlay per
// visible layer with an outline of its 0.5 level (the thresholded edge), drawn inside egui's
// render pass through an egui_wgpu paint callback (src/app/render/wgpu.rs).
//
// Coordinate spaces (conventions §9): `pos_in_image` is in image pixels, `pos_in_ui` in egui
// points. A layer's quad covers the image rectangle `ui_from_image * [0, w] × [0, h]`; the
// image pass covers the whole canvas and paints the background around the image itself (one
// pass for both: without a GPU every pixel of every pass is shaded by the CPU, and egui's fill
// of the canvas under the image was a third of each frame, 38 of 100 ms under lavapipe). The viewport egui sets for the
// callback is the canvas rectangle, so points map to clip space through `canvas_min` /
// `canvas_size`. Zoom and pan only change these uniforms: the mask textures are never
// recomputed for a view change.
//
// Colours are sRGB "gamma" values, blended with premultiplied alpha like egui itself; when the
// framebuffer is an sRGB format the output is converted to linear (`flags.y`).

struct Uniforms {
    // Canvas rectangle (the callback's viewport) in points: min.xy, size.zw.
    canvas: vec4<f32>,
    // Image rectangle in points: min.xy, size.zw (ui_from_image applied to the image bounds).
    image_rect: vec4<f32>,
    // Layers: the layer colour (sRGB 0..1) and overlay opacity in .a. The image pass: the
    // canvas background around the image (sRGB 0..1, .a unused).
    colour: vec4<f32>,
    // x: unused (the image and the layers have their own entry points); y: 1 for an sRGB framebuffer; z: outline width
    // in physical pixels (0 = no outline); w: 1 to sample the image with nearest filtering
    // (zoomed in: show the pixels).
    flags: vec4<f32>,
    // x: pixels per point; y: checkerboard cell size in points; zw: unused.
    extra: vec4<f32>,
};

@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var image_tex: texture_2d<f32>;
@group(0) @binding(2) var mask_tex: texture_2d<f32>;
@group(0) @binding(3) var linear_sampler: sampler;
@group(0) @binding(4) var nearest_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    // Texture coordinates: 0..1 across the image.
    @location(0) uv: vec2<f32>,
    // Position in points (for the checkerboard).
    @location(1) pos_in_ui: vec2<f32>,
};

// Corner `index` of a quad drawn as two triangles: (0,0) (1,0) (0,1) / (0,1) (1,0) (1,1).
fn corner(index: u32) -> vec2<f32> {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    return corners[index];
}

// Clip-space position of a point in egui points.
fn clip_from_ui(pos_in_ui: vec2<f32>) -> vec4<f32> {
    let in_canvas = (pos_in_ui - u.canvas.xy) / u.canvas.zw;
    return vec4<f32>(in_canvas.x * 2.0 - 1.0, 1.0 - in_canvas.y * 2.0, 0.0, 1.0);
}

// A layer's quad: the image rectangle.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let uv = corner(index);
    let pos_in_ui = u.image_rect.xy + uv * u.image_rect.zw;
    var out: VertexOut;
    out.position = clip_from_ui(pos_in_ui);
    out.uv = uv;
    out.pos_in_ui = pos_in_ui;
    return out;
}

// The image pass's quad: the whole canvas; `uv` leaves 0..1 outside the image.
@vertex
fn vs_canvas(@builtin(vertex_index) index: u32) -> VertexOut {
    let pos_in_ui = u.canvas.xy + corner(index) * u.canvas.zw;
    var out: VertexOut;
    out.position = clip_from_ui(pos_in_ui);
    out.uv = (pos_in_ui - u.image_rect.xy) / u.image_rect.zw;
    out.pos_in_ui = pos_in_ui;
    return out;
}

fn linear_from_gamma(srgb: vec3<f32>) -> vec3<f32> {
    let cutoff = srgb < vec3<f32>(0.04045);
    let lower = srgb / vec3<f32>(12.92);
    let higher = pow((srgb + vec3<f32>(0.055)) / vec3<f32>(1.055), vec3<f32>(2.4));
    return select(higher, lower, cutoff);
}

// Premultiplied output, converted for an sRGB framebuffer if needed.
fn output(rgb: vec3<f32>, alpha: f32) -> vec4<f32> {
    var c = rgb;
    if u.flags.y > 0.5 {
        c = linear_from_gamma(c);
    }
    return vec4<f32>(c * alpha, alpha);
}

// The image over a checkerboard where it is transparent, the background colour around it. One
// texture read per fragment: without a GPU this shader runs on the CPU (llvmpipe) every frame,
// beside the model.
@fragment
fn fs_image(in: VertexOut) -> @location(0) vec4<f32> {
    // The image has one mip level, so an explicit level 0 reads what `textureSample` would,
    // and may be taken in the branch on the (uniform) filtering flag. Outside the image the
    // clamped read is discarded by the `select` below.
    var px: vec4<f32>;
    if u.flags.w > 0.5 {
        px = textureSampleLevel(image_tex, nearest_sampler, in.uv, 0.0);
    } else {
        px = textureSampleLevel(image_tex, linear_sampler, in.uv, 0.0);
    }
    let cell = max(u.extra.y, 1.0);
    let parity = (i32(floor(in.pos_in_ui.x / cell)) + i32(floor(in.pos_in_ui.y / cell))) & 1;
    let checker = select(vec3<f32>(0.80), vec3<f32>(0.60), parity == 1);
    let inside = all(in.uv >= vec2<f32>(0.0)) && all(in.uv <= vec2<f32>(1.0));
    let rgb = select(u.colour.rgb, mix(checker, px.rgb, px.a), inside);
    return output(rgb, 1.0);
}

// A layer: fill proportional to the soft mask, plus the outline of its 0.5 level.
@fragment
fn fs_layer(in: VertexOut) -> @location(0) vec4<f32> {
    let m = textureSample(mask_tex, linear_sampler, in.uv).r;
    // Screen-space rate of change of the mask, for an outline of constant on-screen width.
    let dm = fwidth(m);
    let fill = clamp(m, 0.0, 1.0) * u.colour.a;
    var line = 0.0;
    let width_px = u.flags.z;
    if width_px > 0.0 && dm > 1e-5 {
        // Distance to the 0.5 iso-line in physical pixels (first-order estimate).
        let distance_px = abs(m - 0.5) / dm;
        line = clamp(width_px * 0.5 + 0.5 - distance_px, 0.0, 1.0);
    }
    let alpha = max(fill, line);
    return output(u.colour.rgb, alpha);
}
