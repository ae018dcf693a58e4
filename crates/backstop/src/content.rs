//! Message content beyond plain text: ordered text and image parts.

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ContentPart {
    /// Text.
    Text(String),
    /// An image.
    Image(Image),
}

/// An image given by URL: an `https://` URL or a `data:<media type>;base64,<data>` URL.
/// OpenAI-wire providers get it as an `image_url` part; Anthropic as an image block with a
/// `url` or `base64` source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Image {
    /// The URL (https or data).
    pub url: String,
    /// OpenAI's `detail` (`auto`, `low`, `high`), when given.
    pub detail: Option<String>,
}

impl Image {
    /// An image at `url` (https or a data URL).
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            detail: None,
        }
    }

    /// An image from base64 `data` of `media_type` (`image/png`, ...), as a data URL.
    pub fn base64(media_type: &str, data: &str) -> Self {
        Self::url(format!("data:{media_type};base64,{data}"))
    }

    /// With OpenAI's `detail` hint.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// `(media type, base64 data)` when the URL is a base64 data URL.
    pub fn as_base64(&self) -> Option<(&str, &str)> {
        let rest = self.url.strip_prefix("data:")?;
        let (meta, data) = rest.split_once(',')?;
        let media = meta.strip_suffix(";base64")?;
        Some((media, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_media_type_and_data() {
        let i = Image::base64("image/png", "iVBORw0KGgo=");
        assert_eq!(i.url, "data:image/png;base64,iVBORw0KGgo=");
        assert_eq!(i.as_base64(), Some(("image/png", "iVBORw0KGgo=")));
        assert_eq!(Image::url("https://example.com/cat.png").as_base64(), None);
        assert_eq!(Image::url("data:image/png,rawbytes").as_base64(), None);
    }
}
