//! Images a person attaches to work or a follow-up.
//!
//! They travel in two shapes, on purpose. On the way in an image is its
//! bytes ([`ImageInput`]: standard base64 plus the pixel size the sender
//! declares). The control plane checks it ([`validate_images`]: count,
//! base64, size, type by magic bytes, dimensions), keeps the bytes as an
//! attachment of the session, and from then on every stored or served
//! value names it by reference only ([`ImageRef`]): a session, a follow-up
//! or a conversation message never echoes megabytes of base64. The worker
//! fetches the bytes under its claim when it builds a model request.
//!
//! Images are untrusted content like the rest of the work: they reach a
//! model only in user turns.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// At most this many images per prompt (work or follow-up).
pub const MAX_IMAGES: usize = 5;
/// The largest image, decoded: 4 MiB.
pub const MAX_IMAGE_BYTES: usize = 4 << 20;
/// The largest width or height, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// An image as a person sends it: `{"data": <base64>, "dimension":
/// {"width", "height"}}` (the Cloud Agents API's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImageInput {
    /// The image file's bytes in standard base64 (RFC 4648 §4, padded; no
    /// `data:` prefix). PNG, JPEG, GIF or WebP, at most 4 MiB decoded.
    pub data: String,
    /// Its size in pixels, as the sender states it.
    pub dimension: ImageDimension,
}

/// An image's size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImageDimension {
    /// Width, 1–8192.
    pub width: u32,
    /// Height, 1–8192.
    pub height: u32,
}

/// A stored image, by reference: what sessions, follow-ups and
/// conversation messages carry instead of the bytes
/// (`GET /v1/sessions/{session}/attachments/{id}` serves those).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    /// The attachment's id (`img_…`), unique across sessions.
    pub id: String,
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`, from the
    /// bytes themselves (never from what the sender said).
    pub media_type: String,
    /// Width in pixels, as the sender stated it.
    pub width: u32,
    /// Height in pixels, as the sender stated it.
    pub height: u32,
}

/// An image that passed [`validate_images`]: its decoded bytes and the
/// media type they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedImage {
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// The sniffed media type.
    pub media_type: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl CheckedImage {
    /// The reference the image is stored under, once it has an id.
    pub fn reference(&self, id: String) -> ImageRef {
        ImageRef {
            id,
            media_type: self.media_type.to_string(),
            width: self.width,
            height: self.height,
        }
    }
}

/// The media type of an image file by its first bytes, if it is one of
/// the four every vision model takes: PNG, JPEG, GIF, WebP.
pub fn sniff_media_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Checks the images of one prompt and decodes them. `field` is where
/// they are in the request (`source.images`, `images`,
/// `prompt.images`); each error names the offending element's field
/// (`prompt.images[2].data: …`) and says what to send instead. Nothing is
/// decoded beyond the first image refused.
pub fn validate_images(field: &str, images: &[ImageInput]) -> Result<Vec<CheckedImage>, String> {
    if images.len() > MAX_IMAGES {
        return Err(format!(
            "{field}: {} images, at most {MAX_IMAGES} are taken; send fewer",
            images.len()
        ));
    }
    images
        .iter()
        .enumerate()
        .map(|(i, image)| check_one(&format!("{field}[{i}]"), image))
        .collect()
}

fn check_one(at: &str, image: &ImageInput) -> Result<CheckedImage, String> {
    for (name, v) in [
        ("width", image.dimension.width),
        ("height", image.dimension.height),
    ] {
        if !(1..=MAX_IMAGE_SIDE).contains(&v) {
            return Err(format!(
                "{at}.dimension.{name}: {v} is outside 1–{MAX_IMAGE_SIDE}; give the image's {name} in pixels (scale a larger image down)"
            ));
        }
    }
    let data = image.data.as_str();
    if data.is_empty() {
        return Err(format!(
            "{at}.data: empty; send the image file's bytes in standard base64"
        ));
    }
    if data.starts_with("data:") {
        return Err(format!(
            "{at}.data: a data: URL; send only the base64 text after the comma"
        ));
    }
    // Refused before decoding: base64 of 4 MiB is at most this long.
    if data.len() > MAX_IMAGE_BYTES.div_ceil(3) * 4 {
        return Err(too_large(at, data.len() / 4 * 3));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| {
            format!(
                "{at}.data: not valid standard base64 ({e}); encode the file with the standard alphabet (A–Z a–z 0–9 + /), `=` padding, no line breaks"
            )
        })?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(too_large(at, bytes.len()));
    }
    let media_type = sniff_media_type(&bytes).ok_or_else(|| {
        format!("{at}.data: not a PNG, JPEG, GIF or WebP file (by its first bytes); convert the image to one of these")
    })?;
    Ok(CheckedImage {
        bytes,
        media_type,
        width: image.dimension.width,
        height: image.dimension.height,
    })
}

fn too_large(at: &str, bytes: usize) -> String {
    format!(
        "{at}.data: the image is {bytes} bytes decoded, more than {MAX_IMAGE_BYTES} (4 MiB); scale it down or compress it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 PNG, base64.
    const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    fn png_bytes() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(PNG_B64)
            .unwrap()
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn image(data: String, width: u32, height: u32) -> ImageInput {
        ImageInput {
            data,
            dimension: ImageDimension { width, height },
        }
    }

    fn png() -> ImageInput {
        image(PNG_B64.into(), 1, 1)
    }

    fn refused(images: &[ImageInput]) -> String {
        validate_images("prompt.images", images).unwrap_err()
    }

    #[test]
    fn each_of_the_four_types_is_taken_with_its_bytes_and_type() {
        let cases: [(&[u8], &str); 4] = [
            (&png_bytes(), "image/png"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
            (b"GIF89a\x01\0\x01\0", "image/gif"),
            (b"RIFF\x1a\0\0\0WEBPVP8L", "image/webp"),
        ];
        for (bytes, media_type) in cases {
            let ok = validate_images("images", &[image(b64(bytes), 3, 8192)]).unwrap();
            assert_eq!(ok[0].bytes, bytes);
            assert_eq!(ok[0].media_type, media_type);
            assert_eq!(
                ok[0].reference("img_1".into()),
                ImageRef {
                    id: "img_1".into(),
                    media_type: media_type.into(),
                    width: 3,
                    height: 8192
                }
            );
        }
        assert_eq!(validate_images("images", &vec![png(); 5]).unwrap().len(), 5);
    }

    #[test]
    fn six_images_are_refused() {
        let e = refused(&vec![png(); 6]);
        assert!(e.starts_with("prompt.images: 6 images, at most 5"), "{e}");
    }

    #[test]
    fn bad_base64_names_the_element_and_the_alphabet() {
        for data in ["iVBOR$$$", "iVBORw0KGgo", "aGVs\nbG8="] {
            let e = refused(&[png(), png(), image(data.into(), 1, 1)]);
            assert!(
                e.starts_with("prompt.images[2].data: not valid standard base64"),
                "{data:?}: {e}"
            );
            assert!(e.contains("standard alphabet"), "{e}");
        }
        // URL-safe base64 is not the standard alphabet.
        let e = refused(&[image(
            b64(&[0xFB, 0xFF, 0xBF]).replace('+', "-").replace('/', "_"),
            1,
            1,
        )]);
        assert!(e.contains("not valid standard base64"), "{e}");
    }

    #[test]
    fn an_empty_or_data_url_payload_says_what_to_send() {
        assert!(refused(&[image(String::new(), 1, 1)]).starts_with("prompt.images[0].data: empty"));
        let e = refused(&[image(format!("data:image/png;base64,{}", PNG_B64), 1, 1)]);
        assert!(
            e.contains("data: URL") && e.contains("after the comma"),
            "{e}"
        );
    }

    #[test]
    fn more_than_4_mib_decoded_is_refused() {
        let mut big = png_bytes();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        let e = refused(&[image(b64(&big), 1, 1)]);
        assert!(e.starts_with("prompt.images[0].data: the image is"), "{e}");
        assert!(e.contains("4 MiB"), "{e}");
        // Exactly 4 MiB is taken.
        big.truncate(MAX_IMAGE_BYTES);
        assert!(validate_images("i", &[image(b64(&big), 1, 1)]).is_ok());
        // Far too long is refused before decoding, with the same message.
        let e = refused(&[image("A".repeat(MAX_IMAGE_BYTES * 2), 1, 1)]);
        assert!(e.contains("more than 4194304"), "{e}");
    }

    #[test]
    fn other_file_types_are_refused_by_their_bytes() {
        for bytes in [
            &b"%PDF-1.7"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            b"BM\x36\0",
            b"RIFF\0\0\0\0WAVE",
            b"\x89PNG",
        ] {
            let e = refused(&[image(b64(bytes), 1, 1)]);
            assert!(
                e.starts_with("prompt.images[0].data: not a PNG, JPEG, GIF or WebP"),
                "{e}"
            );
        }
    }

    #[test]
    fn dimensions_outside_1_to_8192_name_the_side() {
        for (w, h, field) in [
            (0, 1, "width"),
            (8193, 1, "width"),
            (1, 0, "height"),
            (1, 100_000, "height"),
        ] {
            let e = refused(&[png(), image(PNG_B64.into(), w, h)]);
            assert!(
                e.starts_with(&format!("prompt.images[1].dimension.{field}: ")),
                "{e}"
            );
            assert!(e.contains("1–8192"), "{e}");
        }
    }

    #[test]
    fn wire_names_are_exact_and_unknown_fields_refused() {
        let v: ImageInput = serde_json::from_value(
            serde_json::json!({"data": "eA==", "dimension": {"width": 2, "height": 3}}),
        )
        .unwrap();
        assert_eq!(
            v.dimension,
            ImageDimension {
                width: 2,
                height: 3
            }
        );
        for bad in [
            serde_json::json!({"data": "eA==", "dimension": {"width": 2, "height": 3}, "mime": "x"}),
            serde_json::json!({"data": "eA==", "dimension": {"width": 2, "height": 3, "depth": 1}}),
            serde_json::json!({"data": "eA==", "dimension": {"width": 2}}),
        ] {
            assert!(serde_json::from_value::<ImageInput>(bad).is_err());
        }
        assert_eq!(
            serde_json::to_value(ImageRef {
                id: "img_1".into(),
                media_type: "image/png".into(),
                width: 1,
                height: 2
            })
            .unwrap(),
            serde_json::json!({"id": "img_1", "media_type": "image/png", "width": 1, "height": 2})
        );
    }
}
