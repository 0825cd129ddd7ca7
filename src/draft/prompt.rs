//! The generation prompt a PNG carries, for the draft's per-image context: A1111/Forge's
//! `parameters` text chunk (the prompt is the text before `Negative prompt:` / `Steps:`) or
//! ComfyUI's `prompt` chunk (API-format workflow JSON: the text of the `CLIPTextEncode` node
//! feeding a sampler's `positive` input, else the first such node).
//!
//! Only the PNG chunk layout is read here (signature, then `length, type, data, crc` chunks;
//! `tEXt` Latin-1, `zTXt` and `iTXt` possibly zlib-compressed), not the pixels.

use std::io::Read;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// The generation prompt of PNG `bytes`, if it carries an A1111 or ComfyUI one.
pub fn generation_prompt(bytes: &[u8]) -> Option<String> {
    let chunks = text_chunks(bytes);
    let get = |key: &str| chunks.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if let Some(parameters) = get("parameters")
        && let Some(prompt) = a1111_prompt(parameters)
    {
        return Some(prompt);
    }
    get("prompt").and_then(|json| comfyui_prompt(json))
}

/// `(keyword, text)` of every text chunk.
fn text_chunks(bytes: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(mut rest) = bytes.strip_prefix(SIGNATURE.as_slice()) else {
        return out;
    };
    while rest.len() >= 12 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = &rest[4..8];
        let Some(data) = rest.get(8..8 + len) else {
            break;
        };
        if let Some(chunk) = match kind {
            b"tEXt" => text_chunk(data),
            b"zTXt" => compressed_chunk(data),
            b"iTXt" => international_chunk(data),
            _ => None,
        } {
            out.push(chunk);
        }
        if kind == b"IEND" {
            break;
        }
        rest = rest.get(12 + len..).unwrap_or_default();
    }
    out
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn split_keyword(data: &[u8]) -> Option<(String, &[u8])> {
    let nul = data.iter().position(|&b| b == 0)?;
    Some((latin1(&data[..nul]), &data[nul + 1..]))
}

fn inflate(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(1 << 20)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn text_chunk(data: &[u8]) -> Option<(String, String)> {
    let (key, text) = split_keyword(data)?;
    Some((key, latin1(text)))
}

fn compressed_chunk(data: &[u8]) -> Option<(String, String)> {
    let (key, rest) = split_keyword(data)?;
    let text = inflate(rest.get(1..)?)?;
    Some((key, latin1(&text)))
}

fn international_chunk(data: &[u8]) -> Option<(String, String)> {
    let (key, rest) = split_keyword(data)?;
    let (&compressed, rest) = rest.split_first()?;
    let rest = rest.get(1..)?; // compression method
    let language_end = rest.iter().position(|&b| b == 0)?;
    let rest = &rest[language_end + 1..];
    let translated_end = rest.iter().position(|&b| b == 0)?;
    let text = &rest[translated_end + 1..];
    let text = if compressed == 1 {
        inflate(text)?
    } else {
        text.to_vec()
    };
    Some((key, String::from_utf8(text).ok()?))
}

/// The prompt of A1111's `parameters`: every line before `Negative prompt:` or `Steps:`.
fn a1111_prompt(parameters: &str) -> Option<String> {
    let prompt: Vec<&str> = parameters
        .lines()
        .take_while(|l| !l.starts_with("Negative prompt:") && !l.starts_with("Steps:"))
        .collect();
    let prompt = prompt.join("\n").trim().to_string();
    (!prompt.is_empty()).then_some(prompt)
}

/// The positive prompt of a ComfyUI API-format workflow.
fn comfyui_prompt(json: &str) -> Option<String> {
    let graph: serde_json::Value = serde_json::from_str(json).ok()?;
    let nodes = graph.as_object()?;
    let text_of = |id: &str| {
        let node = nodes.get(id)?;
        let class = node["class_type"].as_str()?;
        if !class.contains("CLIPTextEncode") {
            return None;
        }
        node["inputs"]["text"].as_str().map(str::to_string)
    };
    let positive = nodes.values().find_map(|node| {
        let link = node["inputs"]["positive"].as_array()?;
        text_of(link.first()?.as_str()?)
    });
    let prompt = positive.or_else(|| {
        let mut ids: Vec<&String> = nodes.keys().collect();
        ids.sort();
        ids.into_iter().find_map(|id| text_of(id))
    })?;
    let prompt = prompt.trim().to_string();
    (!prompt.is_empty()).then_some(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]); // CRC, not checked
        out
    }

    fn png(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        for c in chunks {
            out.extend_from_slice(c);
        }
        out.extend(chunk(b"IEND", &[]));
        out
    }

    #[test]
    fn a1111_parameters_give_the_prompt_lines() {
        let text = b"parameters\0masterpiece, 1girl, red dress\nblue sky\nNegative prompt: lowres\nSteps: 20, Sampler: Euler";
        let bytes = png(&[chunk(b"tEXt", text)]);
        assert_eq!(
            generation_prompt(&bytes).as_deref(),
            Some("masterpiece, 1girl, red dress\nblue sky")
        );
    }

    #[test]
    fn comfyui_prompt_follows_the_positive_link() {
        let json = r#"{"3": {"class_type": "KSampler", "inputs": {"positive": ["6", 0], "negative": ["7", 0]}},
                      "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a castle at dusk"}},
                      "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry"}}}"#;
        let mut data = b"prompt\0\0\0\0\0".to_vec();
        data.extend_from_slice(json.as_bytes());
        let bytes = png(&[chunk(b"iTXt", &data)]);
        assert_eq!(
            generation_prompt(&bytes).as_deref(),
            Some("a castle at dusk")
        );
    }

    #[test]
    fn files_without_text_or_not_png_have_none() {
        assert_eq!(generation_prompt(&png(&[])), None);
        assert_eq!(generation_prompt(b"GIF89a"), None);
        let truncated = &png(&[chunk(b"tEXt", b"parameters\0cat")])[..20];
        assert_eq!(generation_prompt(truncated), None);
    }
}
