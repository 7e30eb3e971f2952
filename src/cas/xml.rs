//! A strict, namespace-aware pull reader over quick-xml, shared by every XML format
//! (CAS 2/3 answers, SAML 1.1 answers and requests, single-logout bodies).
//!
//! quick-xml is a tokenizer: single root, balanced stack at EOF, no trailing content,
//! resolved prefixes, no DOCTYPE, no unknown entity, legal characters are all the
//! caller's job (`docs/security.md`, "How the ENT's answer is read"). This module does
//! that job once, so the schema walks above it only see well-formed, namespace-resolved
//! elements and fully decoded, trimmed text.
//!
//! The walk is element by element: [`XmlReader::root`], then for each element exactly
//! one of [`XmlReader::next_child`] until `None`, [`XmlReader::text`] or
//! [`XmlReader::skip`]; [`XmlReader::finish`] checks the epilogue. Text is decoded
//! straight into the `String` the model keeps: no allocation per event.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{ParseError, ParseLimits};

/// XML attributes accepted on one element (`docs/security.md`, T25).
const MAX_XML_ATTRIBUTES: usize = 32;
/// Namespace declarations in scope at once: CAS answers declare one to five.
const MAX_BINDINGS: usize = 64;
/// Initial size of the text decoding buffer: most values are under 100 bytes.
const SCRATCH_CAPACITY: usize = 128;

/// The namespaces bonenfant understands; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace (unprefixed, no default namespace in scope).
    None,
    Cas,
    Soap,
    Saml1Protocol,
    Saml1Assertion,
    Saml2Protocol,
    Saml2Assertion,
    Other,
}

pub(crate) const CAS_NS: &str = "http://www.yale.edu/tp/cas";
pub(crate) const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const SAML1P_NS: &str = "urn:oasis:names:tc:SAML:1.0:protocol";
pub(crate) const SAML1_NS: &str = "urn:oasis:names:tc:SAML:1.0:assertion";
const SAML2P_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML2_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

impl Ns {
    fn from_uri(uri: &[u8]) -> Self {
        match uri {
            u if u == CAS_NS.as_bytes() => Ns::Cas,
            u if u == SOAP_NS.as_bytes() => Ns::Soap,
            u if u == SAML1P_NS.as_bytes() => Ns::Saml1Protocol,
            u if u == SAML1_NS.as_bytes() => Ns::Saml1Assertion,
            u if u == SAML2P_NS.as_bytes() => Ns::Saml2Protocol,
            u if u == SAML2_NS.as_bytes() => Ns::Saml2Assertion,
            _ => Ns::Other,
        }
    }
}

/// One namespace declaration in scope. The namespace is classified once, when
/// declared, so resolving an element is a short scan of a few prefixes.
struct Binding<'a> {
    /// Empty for the default namespace (`xmlns="…"`). Borrowed from the answer.
    prefix: &'a [u8],
    ns: Ns,
    /// Depth of the element that declared it.
    depth: usize,
}

/// One element start, namespace resolved. Valid until the reader moves on.
pub(crate) struct Element<'a> {
    pub ns: Ns,
    start: BytesStart<'a>,
    /// Where the local name starts in the qualified name (after `prefix:`).
    local_start: usize,
    /// `<x/>`: no children, no text, no end event to consume.
    empty: bool,
}

impl Element<'_> {
    /// Local name (no prefix).
    pub fn local(&self) -> &[u8] {
        let name = self.start.name().into_inner();
        name.get(self.local_start..).unwrap_or(name)
    }

    /// Whether this is `{ns}local`.
    pub fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.local() == local.as_bytes()
    }
}

/// Where the reader is relative to the root element.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prolog,
    InRoot,
    Epilog,
}

/// The strict reader. Namespaces are resolved here over quick-xml's plain `Reader`
/// rather than its `NsReader`: the same rules (Namespaces in XML 1.0: scoping,
/// default namespace, `xmlns=""` undeclaring it, `xml` predefined, unbound prefixes
/// refused) at a third of the cost, which the ≤ 2× parse budget needs
/// (`docs/performance.md`).
pub(crate) struct XmlReader<'a> {
    inner: Reader<&'a [u8]>,
    /// The whole answer, validated as UTF-8 once: text slices are cut from it.
    body: &'a str,
    bindings: Vec<Binding<'a>>,
    /// Depth of the innermost binding (0: none), so that the scope check at every
    /// event is one comparison.
    scope_depth: usize,
    /// Reused for every value that needs decoding. Allocated at a typical value's size:
    /// growing it from empty (three reallocations for one `&amp;`) cost more than the rest
    /// of that value's decoding.
    scratch: String,
    /// Open elements.
    depth: usize,
    phase: Phase,
    max_depth: usize,
    max_value_len: usize,
}

// === impl XmlReader ===

impl<'a> XmlReader<'a> {
    /// Checks size and encoding before any tokenising: UTF-8 only (T28); a
    /// UTF-16 BOM or a Latin-1 byte fails here.
    pub fn new(body: &'a [u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        if body.len() > limits.max_bytes {
            return Err(ParseError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
        let mut inner = Reader::from_reader(body);
        let config = inner.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        // Whitespace between elements is skipped by quick-xml, without an event: about a
        // quarter of an answer's events are that whitespace. Turned off while a value is
        // read (see `decode_content`), where whitespace after a reference is data.
        config.trim_text_start = true;
        Ok(Self {
            inner,
            body: text,
            bindings: Vec::new(),
            scope_depth: 0,
            scratch: String::with_capacity(SCRATCH_CAPACITY),
            depth: 0,
            phase: Phase::Prolog,
            max_depth: limits.max_depth,
            max_value_len: limits.max_value_len,
        })
    }

    /// `bytes` (a slice of the answer) as `&str`, without validating UTF-8 again.
    pub fn as_str(&self, bytes: &[u8]) -> Result<&'a str, ParseError> {
        // Events of a slice reader borrow the answer, so `bytes` lies inside `body` and
        // the range is exact; anything else (an owned copy) fails the range check.
        let offset = (bytes.as_ptr() as usize).wrapping_sub(self.body.as_ptr() as usize);
        match self.body.get(offset..offset.wrapping_add(bytes.len())) {
            Some(s) if s.as_ptr() == bytes.as_ptr() => Ok(s),
            _ => Err(ParseError::Malformed("text outside the answer")),
        }
    }

    /// The next event, with the checks that hold everywhere: no DOCTYPE, UTF-8 only,
    /// depth bounded, one root, nothing after it. Element starts come back resolved.
    #[inline(always)]
    fn next(&mut self) -> Result<Event<'a>, ParseError> {
        // Declarations of elements that ended (or were empty) go out of scope.
        if self.scope_depth > self.depth {
            while self.bindings.last().is_some_and(|b| b.depth > self.depth) {
                self.bindings.pop();
            }
            self.scope_depth = self.bindings.last().map_or(0, |b| b.depth);
        }
        // A `match` rather than `map_err`, which the compiler left outlined: a call at
        // every event (≈ 400 instructions of a 2.4 KB answer's parse).
        let event = match self.inner.read_event() {
            Ok(event) => event,
            Err(error) => return Err(malformed(error)),
        };
        match &event {
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Decl(decl) => check_declaration(decl)?,
            Event::Start(_) | Event::Empty(_) => {
                match self.phase {
                    Phase::Prolog => self.phase = Phase::InRoot,
                    Phase::Epilog => return Err(ParseError::TwoRoots),
                    Phase::InRoot => {}
                }
                if self.depth + 1 > self.max_depth {
                    return Err(ParseError::TooDeep {
                        limit: self.max_depth,
                    });
                }
                if matches!(event, Event::Start(_)) {
                    self.depth += 1;
                } else if self.depth == 0 {
                    self.phase = Phase::Epilog;
                }
            }
            Event::End(_) => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.phase = Phase::Epilog;
                }
            }
            Event::Text(text) if self.phase != Phase::InRoot && !is_xml_whitespace(text) => {
                return Err(ParseError::TrailingContent);
            }
            Event::GeneralRef(_) | Event::CData(_) if self.phase != Phase::InRoot => {
                return Err(ParseError::TrailingContent);
            }
            Event::Eof => match self.phase {
                Phase::Prolog => return Err(ParseError::Empty),
                Phase::InRoot => return Err(ParseError::Unclosed),
                Phase::Epilog => {}
            },
            _ => {}
        }
        Ok(event)
    }

    /// Reads the prolog and returns the root element.
    pub fn root(&mut self) -> Result<Element<'a>, ParseError> {
        loop {
            match self.next()? {
                Event::Start(start) => return self.element(start, false),
                Event::Empty(start) => return self.element(start, true),
                _ => {}
            }
        }
    }

    /// Declares the element's namespaces, checks its XML attributes and resolves its
    /// name.
    fn element(&mut self, start: BytesStart<'a>, empty: bool) -> Result<Element<'a>, ParseError> {
        // Most elements carry no XML attribute: the attribute parser is not even set up.
        if !is_xml_whitespace(start.attributes_raw()) {
            self.xml_attributes(&start, empty)?;
        }
        let (ns, local_start) = match split_qname(start.name().as_ref()) {
            Some((prefix, _)) => (self.lookup(prefix)?, prefix.len() + 1),
            None => (self.lookup(b"")?, 0),
        };
        Ok(Element {
            ns,
            start,
            local_start,
            empty,
        })
    }

    /// Declares the namespaces of an element with XML attributes and checks those
    /// (count, duplicates, bound prefixes).
    fn xml_attributes(&mut self, start: &BytesStart<'a>, empty: bool) -> Result<(), ParseError> {
        // Bindings live at the element's own depth (an empty one never opened).
        let depth = if empty { self.depth + 1 } else { self.depth };
        let mut prefixed = false;
        for (count, attribute) in start.attributes().with_checks(true).enumerate() {
            if count >= MAX_XML_ATTRIBUTES {
                return Err(ParseError::TooManyAttributes {
                    limit: MAX_XML_ATTRIBUTES,
                });
            }
            let attribute = attribute.map_err(|e| match e {
                quick_xml::events::attributes::AttrError::Duplicated(..) => {
                    ParseError::DuplicateAttribute
                }
                _ => ParseError::Malformed("bad attribute syntax"),
            })?;
            let key = attribute.key.as_ref();
            let prefix = match key.strip_prefix(b"xmlns") {
                Some([]) => Some(&[][..]),
                Some([b':', prefix @ ..]) => Some(self.as_str(prefix)?.as_bytes()),
                _ => None,
            };
            let Some(prefix) = prefix else {
                prefixed |= key.contains(&b':');
                continue;
            };
            // A namespace name is nearly always plain: compared in place, not copied.
            let raw = self.as_str(&attribute.value)?;
            let uri = if is_plain_text(raw) {
                Cow::Borrowed(raw)
            } else {
                let mut uri = String::new();
                push_decoded(&mut uri, raw, true)?;
                Cow::Owned(uri)
            };
            self.declare(prefix, uri.as_bytes(), depth)?;
        }
        if prefixed {
            for attribute in start.attributes().with_checks(false).flatten() {
                let key = attribute.key.as_ref();
                if let Some((prefix, _)) = split_qname(key) {
                    if prefix != b"xmlns" {
                        self.lookup(prefix)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// One `xmlns[:prefix]="uri"`. Undeclaring a prefix (`xmlns:p=""`) is not XML
    /// Namespaces 1.0 and is refused as leaving the prefix unbound (T24).
    fn declare(&mut self, prefix: &'a [u8], uri: &[u8], depth: usize) -> Result<(), ParseError> {
        let ns = match (prefix, uri) {
            (b"xmlns", _) => return Err(ParseError::Malformed("`xmlns` prefix declared")),
            (b"xml", u) if u == XML_NS.as_bytes() => return Ok(()),
            (b"xml", _) => return Err(ParseError::Malformed("`xml` prefix rebound")),
            ([], []) => Ns::None,
            (_, []) => return Err(ParseError::UnboundPrefix),
            (_, u) => Ns::from_uri(u),
        };
        if self.bindings.len() >= MAX_BINDINGS {
            return Err(ParseError::TooManyAttributes {
                limit: MAX_BINDINGS,
            });
        }
        self.bindings.push(Binding { prefix, ns, depth });
        self.scope_depth = depth;
        Ok(())
    }

    /// The namespace `prefix` (empty: the default namespace) is bound to here.
    fn lookup(&self, prefix: &[u8]) -> Result<Ns, ParseError> {
        // Prefixes are a few bytes: an inline comparison beats a `memcmp` call.
        let same = |b: &&Binding| {
            b.prefix.len() == prefix.len() && b.prefix.iter().zip(prefix).all(|(x, y)| x == y)
        };
        match self.bindings.iter().rev().find(same) {
            Some(binding) => Ok(binding.ns),
            None if prefix.is_empty() => Ok(Ns::None),
            None if prefix == b"xml" => Ok(Ns::Other),
            None => Err(ParseError::UnboundPrefix),
        }
    }

    /// The next child element of `parent`, or `None` at its end. Whitespace, comments
    /// and processing instructions between elements are skipped; other text is refused.
    pub fn next_child(&mut self, parent: &Element<'a>) -> Result<Option<Element<'a>>, ParseError> {
        if parent.empty {
            return Ok(None);
        }
        // quick-xml skips the whitespace: a text event here starts with something else.
        self.inner.config_mut().trim_text_start = true;
        loop {
            match self.next()? {
                Event::Start(start) => return self.element(start, false).map(Some),
                Event::Empty(start) => return self.element(start, true).map(Some),
                Event::End(_) => return Ok(None),
                Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {
                    return Err(ParseError::UnexpectedText)
                }
                Event::Eof => return Err(ParseError::Unclosed),
                _ => {}
            }
        }
    }

    /// The whole text content of a leaf element: references decoded exactly once,
    /// line ends normalised, XML whitespace trimmed at both ends. A comment, PI or
    /// CDATA section inside the value is refused (T22): a value is never read as only
    /// part of its text. `context` names the element in the error for a child element.
    pub fn text(
        &mut self,
        element: &Element<'a>,
        context: &'static str,
    ) -> Result<String, ParseError> {
        self.text_ref(element, context).map(str::to_owned)
    }

    /// [`Self::text`] borrowed from the reader's buffer, valid until the next read.
    pub fn text_ref(
        &mut self,
        element: &Element<'a>,
        context: &'static str,
    ) -> Result<&str, ParseError> {
        self.text_inner(element, context, false)
    }

    /// Like [`Self::text`] but child elements are skipped (SAML `StatusCode`, whose
    /// text some servers use as the message and which may nest a sub-code).
    pub fn text_skipping_children(
        &mut self,
        element: &Element<'a>,
        context: &'static str,
    ) -> Result<String, ParseError> {
        self.text_inner(element, context, true).map(str::to_owned)
    }

    fn text_inner(
        &mut self,
        element: &Element<'a>,
        context: &'static str,
        skip_children: bool,
    ) -> Result<&str, ParseError> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let result = self.decode_content(&mut out, element, context, skip_children);
        self.scratch = out;
        match result? {
            Some(plain) => Ok(trim_xml_whitespace(plain)),
            None => Ok(trim_xml_whitespace(&self.scratch)),
        }
    }

    /// Decodes the element's content into `out`; or, when the content is one run of
    /// text with nothing to decode (most values), leaves `out` empty and returns that
    /// run, borrowed from the answer: no copy.
    fn decode_content(
        &mut self,
        out: &mut String,
        element: &Element<'a>,
        context: &'static str,
        skip_children: bool,
    ) -> Result<Option<&'a str>, ParseError> {
        if element.empty {
            return Ok(None);
        }
        // `a &amp; b`: the space after the reference is data, quick-xml must not trim it.
        self.inner.config_mut().trim_text_start = false;
        // The first run of text while it is the whole content so far and plain; copied
        // into `out` (which it would have been) as soon as anything follows it.
        let mut plain: Option<&'a str> = None;
        loop {
            match self.next()? {
                Event::Text(text) => {
                    let raw = self.as_str(&text)?;
                    if let Some(first) = plain.take() {
                        out.push_str(first);
                    }
                    if out.is_empty() {
                        // Leading whitespace is never kept: skip it before copying
                        // (trailing whitespace may precede a reference, so it waits).
                        let start = trim_start_xml_whitespace(raw);
                        if is_plain_text(start) {
                            plain = Some(start);
                        } else {
                            push_decoded(out, start, false)?;
                        }
                    } else {
                        push_decoded(out, raw, false)?;
                    }
                }
                Event::GeneralRef(reference) => {
                    if let Some(first) = plain.take() {
                        out.push_str(first);
                    }
                    push_reference(out, &reference)?
                }
                // Bound, not `_`: the end tag alone is dropped inline, where the whole
                // event's drop was a call per value.
                Event::End(_end) => return Ok(plain),
                Event::Comment(_) | Event::PI(_) | Event::CData(_) => {
                    return Err(ParseError::SplitText)
                }
                Event::Start(start) if skip_children => {
                    let child = self.element(start, false)?;
                    self.skip(child)?;
                }
                Event::Empty(start) if skip_children => {
                    self.element(start, true)?;
                }
                Event::Start(_) | Event::Empty(_) => {
                    return Err(ParseError::UnexpectedElement(context))
                }
                Event::Eof => return Err(ParseError::Unclosed),
                _ => {}
            }
            if plain.map_or(out.len(), str::len) > self.max_value_len {
                return Err(ParseError::ValueTooLong {
                    limit: self.max_value_len,
                });
            }
        }
    }

    /// Skips an element and everything inside it (still checked: well-formedness,
    /// attributes, prefixes, references).
    pub fn skip(&mut self, element: Element<'a>) -> Result<(), ParseError> {
        if element.empty {
            return Ok(());
        }
        let target = self.depth.saturating_sub(1);
        loop {
            match self.next()? {
                Event::Start(start) => {
                    self.element(start, false)?;
                }
                Event::Empty(start) => {
                    self.element(start, true)?;
                }
                Event::End(_) if self.depth == target => return Ok(()),
                Event::GeneralRef(reference) => {
                    push_reference(&mut String::new(), &reference)?;
                }
                Event::Eof => return Err(ParseError::Unclosed),
                _ => {}
            }
        }
    }

    /// After the root's end: only whitespace, comments and PIs, then EOF.
    pub fn finish(mut self) -> Result<(), ParseError> {
        loop {
            if let Event::Eof = self.next()? {
                return Ok(());
            }
        }
    }

    /// The decoded value of the unprefixed XML attribute `local` of `element`.
    /// XML attribute value normalisation applies (literal tab/LF/CR become spaces;
    /// `&#10;` stays a line feed), then the value is trimmed.
    pub fn attribute(
        &self,
        element: &Element<'a>,
        local: &str,
    ) -> Result<Option<String>, ParseError> {
        for attribute in element.start.attributes().with_checks(false) {
            let attribute = attribute.map_err(|_| ParseError::Malformed("bad attribute syntax"))?;
            if attribute.key.as_ref() != local.as_bytes() {
                continue;
            }
            let raw = std::str::from_utf8(&attribute.value).map_err(|_| ParseError::NotUtf8)?;
            let mut out = String::with_capacity(raw.len());
            push_decoded(&mut out, raw, true)?;
            if out.len() > self.max_value_len {
                return Err(ParseError::ValueTooLong {
                    limit: self.max_value_len,
                });
            }
            let trimmed = trim_xml_whitespace(&out);
            if trimmed.len() != out.len() {
                out = trimmed.to_owned();
            }
            return Ok(Some(out));
        }
        Ok(None)
    }

    /// Resolves a QName written in attribute content (SAML `StatusCode/@Value`) with
    /// the namespaces in scope at the element just read (`docs/security.md`, T30).
    pub fn resolve_qname<'v>(&self, value: &'v str) -> Result<(Ns, &'v str), ParseError> {
        match value.split_once(':') {
            Some((prefix, local)) => Ok((self.lookup(prefix.as_bytes())?, local)),
            None => Ok((self.lookup(b"")?, value)),
        }
    }
}

/// `prefix:local` → `(prefix, local)`; `None` when unprefixed.
fn split_qname(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = name.iter().position(|&b| b == b':')?;
    Some((name.get(..colon)?, name.get(colon + 1..)?))
}

#[cold]
fn malformed(error: quick_xml::Error) -> ParseError {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    match error {
        quick_xml::Error::IllFormed(IllFormedError::UnclosedReference) => {
            ParseError::Malformed("`&` outside a reference")
        }
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { .. }) => {
            ParseError::Malformed("mismatched end tag")
        }
        quick_xml::Error::IllFormed(IllFormedError::UnmatchedEndTag(_)) => {
            ParseError::Malformed("end tag without start tag")
        }
        quick_xml::Error::IllFormed(IllFormedError::DoubleHyphenInComment) => {
            ParseError::Malformed("`--` inside a comment")
        }
        quick_xml::Error::IllFormed(_) => ParseError::Malformed("ill-formed markup"),
        quick_xml::Error::Syntax(SyntaxError::UnclosedTag) => ParseError::Unclosed,
        quick_xml::Error::Syntax(_) => ParseError::Malformed("syntax error"),
        quick_xml::Error::Encoding(_) => ParseError::NotUtf8,
        quick_xml::Error::Escape(_) => ParseError::CharRef,
        _ => ParseError::Malformed("unreadable markup"),
    }
}

/// `<?xml … encoding="…"?>`: only UTF-8 (any case) or no declaration.
fn check_declaration(decl: &quick_xml::events::BytesDecl<'_>) -> Result<(), ParseError> {
    match decl.encoding() {
        None => Ok(()),
        Some(Ok(encoding)) if encoding.eq_ignore_ascii_case(b"utf-8") => Ok(()),
        Some(_) => Err(ParseError::Encoding),
    }
}

/// XML's whitespace: space, tab, LF, CR (not Unicode's wider set: `\u{a0}` is data).
pub(crate) fn is_xml_whitespace(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| in_table(&XML_WHITESPACE, b))
}

/// XML whitespace as a 256-entry table: one load per byte in the trims.
const XML_WHITESPACE: [bool; 256] = {
    let mut table = [false; 256];
    table[b' ' as usize] = true;
    table[b'\t' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table
};

/// Bytes that stop the text fast path besides C0 controls: `&`, `<`, and 0xEF (which
/// starts U+FFFE/U+FFFF, not XML characters).
const TEXT_MARKS: &[u8] = b"&<\xEF";
/// Bytes that make a name worth a closer look besides C0 controls.
const NAME_MARKS: &[u8] = b"\xEF";

/// Whether any byte of `bytes` is a C0 control or one of `marks`, eight bytes a step:
/// these scans run over every value and name of every answer, and a table lookup per
/// byte cost about 5,000 of the 83,000 instructions of a 2.4 KB answer's parse.
#[inline]
fn has_control_or(bytes: &[u8], marks: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Per byte, the high bit of `x - n` without the high bit of `x`: some byte is below
    // `n` (n ≤ 0x80). Exact as a yes/no: a borrow only spills past a byte that matched.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS != 0;
    // A byte equal to `mark` is a zero byte of `x ^ mark…mark`: below 1.
    let hit = |word: [u8; 8]| {
        let x = u64::from_ne_bytes(word);
        below(x, 0x20)
            || marks
                .iter()
                .any(|&mark| below(x ^ (ONES * u64::from(mark)), 1))
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        // Cannot fail (exact chunks); "yes" sends the caller to its exact path.
        if <[u8; 8]>::try_from(chunk).map_or(true, hit) {
            return true;
        }
    }
    if chunks.remainder().is_empty() {
        return false;
    }
    // The tail as one word too, not byte by byte (most values and names are short, and
    // that loop was two thirds of the scan's cost): the last eight bytes, which re-reads
    // bytes already found clean, or a slice shorter than a word padded with `a` (no
    // control, no mark).
    let last = bytes
        .len()
        .checked_sub(8)
        .and_then(|start| bytes.get(start..));
    let word = match last.map(<[u8; 8]>::try_from) {
        Some(Ok(word)) => word,
        Some(Err(_)) => return true,
        None => {
            let mut word = [b'a'; 8];
            word.iter_mut().zip(bytes).for_each(|(w, &b)| *w = b);
            word
        }
    };
    hit(word)
}

fn in_table(table: &[bool; 256], b: u8) -> bool {
    table.get(usize::from(b)).copied().unwrap_or(true)
}

/// Whether `raw` holds nothing to decode or check: no reference, no `<`, no CR or
/// other control, no 0xEF (the first byte of U+FFFE and U+FFFF). Inlined: it runs on
/// every value, and the call's register saves cost as much as a short value's scan.
#[inline]
fn is_plain_text(raw: &str) -> bool {
    !has_control_or(raw.as_bytes(), TEXT_MARKS)
}

/// XML whitespace trimmed at both ends. Byte by byte rather than `str::trim_matches`
/// (which decodes every char): the four whitespace bytes are ASCII, so every cut is
/// on a char boundary.
pub(crate) fn trim_xml_whitespace(value: &str) -> &str {
    let bytes = value.as_bytes();
    let end = bytes
        .iter()
        .rposition(|&b| !in_table(&XML_WHITESPACE, b))
        .map_or(0, |last| last + 1);
    trim_start_xml_whitespace(value.get(..end).unwrap_or_default())
}

/// XML whitespace trimmed at the start (see [`trim_xml_whitespace`]).
fn trim_start_xml_whitespace(value: &str) -> &str {
    let start = value
        .as_bytes()
        .iter()
        .position(|&b| !in_table(&XML_WHITESPACE, b))
        .unwrap_or(value.len());
    value.get(start..).unwrap_or_default()
}

/// Whether `c` is an XML 1.0 `Char`.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `raw` (character data or an attribute value) decoded: `&…;` references
/// resolved once, CR/CRLF → LF, and in attributes literal tab/LF/CR → space. Refuses
/// `<` in attributes and characters XML does not allow. The common case (no `&`, no
/// CR, no control byte) is one `push_str`.
fn push_decoded(out: &mut String, raw: &str, in_attribute: bool) -> Result<(), ParseError> {
    let bytes = raw.as_bytes();
    // Fast path: nothing to decode or check.
    if is_plain_text(raw) {
        out.push_str(raw);
        return Ok(());
    }
    out.reserve(raw.len());
    // Ordinary text is copied in runs; `i` stops only at ASCII specials, so every
    // slice boundary is a char boundary.
    let (mut run, mut i) = (0, 0);
    while let Some(&b) = bytes.get(i) {
        if b >= 0x20 && b != b'&' && b != b'<' {
            // U+FFFE and U+FFFF (EF BF BE/BF) are not XML characters.
            if b == 0xEF && matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) {
                return Err(ParseError::ControlChar);
            }
            i += 1;
            continue;
        }
        out.push_str(raw.get(run..i).unwrap_or_default());
        match b {
            b'&' => {
                let rest = raw.get(i + 1..).unwrap_or_default();
                let end = rest
                    .find(';')
                    .ok_or(ParseError::Malformed("`&` outside a reference"))?;
                out.push(decode_reference(rest.get(..end).unwrap_or_default())?);
                i += end + 2;
            }
            b'<' if in_attribute => return Err(ParseError::Malformed("`<` in an attribute value")),
            b'<' => {
                out.push('<');
                i += 1;
            }
            b'\r' => {
                i += 1;
                if bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
                out.push(if in_attribute { ' ' } else { '\n' });
            }
            b'\t' | b'\n' => {
                out.push(if in_attribute { ' ' } else { char::from(b) });
                i += 1;
            }
            _ => return Err(ParseError::ControlChar),
        }
        run = i;
    }
    out.push_str(raw.get(run..).unwrap_or_default());
    Ok(())
}

/// Whether `name` holds a character XML does not allow (a C0 control, U+FFFE, U+FFFF):
/// quick-xml does not check names.
pub(crate) fn has_non_xml_char(name: &str) -> bool {
    let bytes = name.as_bytes();
    let suspect = has_control_or(bytes, NAME_MARKS);
    suspect
        && bytes.iter().enumerate().any(|(i, &b)| {
            (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
                || (b == 0xEF && matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])))
        })
}

fn push_reference(out: &mut String, reference: &[u8]) -> Result<(), ParseError> {
    let name = std::str::from_utf8(reference).map_err(|_| ParseError::NotUtf8)?;
    out.push(decode_reference(name)?);
    Ok(())
}

/// One reference's name (between `&` and `;`): the five predefined entities or a
/// character reference to a legal XML character. Anything else is refused (no DTD,
/// so no other entity can be defined).
fn decode_reference(name: &str) -> Result<char, ParseError> {
    let code = match name {
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "amp" => return Ok('&'),
        "apos" => return Ok('\''),
        "quot" => return Ok('"'),
        _ => match name.strip_prefix('#') {
            None => return Err(ParseError::Entity),
            Some(num) => {
                let (digits, radix) = match num.strip_prefix('x') {
                    Some(hex) => (hex, 16),
                    None => (num, 10),
                };
                if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                    return Err(ParseError::CharRef);
                }
                u32::from_str_radix(digits, radix).map_err(|_| ParseError::CharRef)?
            }
        },
    };
    char::from_u32(code)
        .filter(|&c| is_xml_char(c))
        .ok_or(ParseError::CharRef)
}

// === escaping, for the serialisers ===

/// Appends `value` escaped for XML character data or a double-quoted attribute.
/// Characters XML 1.0 cannot carry at all become U+FFFD: the parser never produces
/// them, and a well-formed answer matters more than a byte no client could read.
pub(crate) fn push_escaped(out: &mut String, value: &str, in_attribute: bool) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Whether `name` can be written as an element or attribute local name: an ASCII
/// NCName. Conservative on purpose (non-ASCII names go the name/value way).
pub(crate) fn is_ncname(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_scan_finds_every_control_and_mark_wherever_it_is() {
        for len in 1..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    let expected = b < 0x20 || TEXT_MARKS.contains(&b);
                    assert_eq!(has_control_or(&bytes, TEXT_MARKS), expected, "{bytes:?}");
                    // Bytes with the high bit set around it change nothing.
                    bytes[len - 1] = if at == len - 1 { b } else { 0xFF };
                    assert_eq!(has_control_or(&bytes, TEXT_MARKS), expected, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn the_word_scan_reads_a_tail_shorter_than_a_word_whatever_surrounds_it() {
        // The tail is read as the slice's last eight bytes or, in a slice shorter than a
        // word, padded: neither the overlap nor the padding may hide or invent a hit.
        for len in 0..=24usize {
            let clean: Vec<u8> = (0..len).map(|i| 0x80 | i as u8).collect();
            assert!(!has_control_or(&clean, TEXT_MARKS), "{clean:?}");
            for at in len.saturating_sub(8)..len {
                for &b in b"\0\t\x1f&<\xEF" {
                    let mut bytes = clean.clone();
                    bytes[at] = b;
                    assert!(has_control_or(&bytes, TEXT_MARKS), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn whitespace_is_skipped_between_elements_but_kept_after_a_reference_or_child() {
        let body = b"<r>\n  <a> x &amp; y </a>\r\n\t<b>p <c/> q&#33; r</b>\n</r>\n";
        let mut reader = XmlReader::new(body, &ParseLimits::default()).unwrap();
        let root = reader.root().unwrap();
        let a = reader.next_child(&root).unwrap().unwrap();
        assert_eq!(reader.text(&a, "a").unwrap(), "x & y");
        let b = reader.next_child(&root).unwrap().unwrap();
        assert_eq!(reader.text_skipping_children(&b, "b").unwrap(), "p  q! r");
        assert!(reader.next_child(&root).unwrap().is_none());
        reader.finish().unwrap();
        // Text between elements is still refused when whitespace precedes it.
        let mut reader = XmlReader::new(b"<r>\n  x<a/></r>", &ParseLimits::default()).unwrap();
        let root = reader.root().unwrap();
        assert_eq!(
            reader.next_child(&root).err().unwrap().code().as_str(),
            "cas.parse.unexpected_text"
        );
    }

    fn decode(raw: &str, attr: bool) -> Result<String, ParseError> {
        let mut out = String::new();
        push_decoded(&mut out, raw, attr).map(|()| out)
    }

    #[test]
    fn decodes_references_exactly_once() {
        assert_eq!(decode("a&amp;lt;b", false).unwrap(), "a&lt;b");
        assert_eq!(decode("al&#105;ce&#x61;", false).unwrap(), "alicea");
        assert_eq!(decode("é&#233;&#x1F600;", false).unwrap(), "éé😀");
        assert_eq!(decode("a\r\nb\rc", false).unwrap(), "a\nb\nc");
        assert_eq!(decode("a\tb\nc&#10;d", true).unwrap(), "a b c\nd");
    }

    #[test]
    fn refuses_bad_references_and_characters() {
        for (raw, code) in [
            ("&unknown;", "cas.parse.entity"),
            ("&#0;", "cas.parse.char_ref"),
            ("&#xD800;", "cas.parse.char_ref"),
            ("&#x110000;", "cas.parse.char_ref"),
            ("&#1;", "cas.parse.char_ref"),
            ("&#-1;", "cas.parse.char_ref"),
            ("&#x;", "cas.parse.char_ref"),
            ("&#xFFFE;", "cas.parse.char_ref"),
            ("a\u{1}b", "cas.parse.control_char"),
            ("a\u{FFFF}", "cas.parse.control_char"),
            ("a & b", "cas.parse.malformed"),
        ] {
            assert_eq!(
                decode(raw, false).unwrap_err().code().as_str(),
                code,
                "{raw:?}"
            );
        }
        assert_eq!(
            decode("a<b", true).unwrap_err().code().as_str(),
            "cas.parse.malformed"
        );
    }

    #[test]
    fn escape_then_decode_is_identity() {
        for s in [
            "a&b<c>d\"e'f",
            "tab\there",
            "line\nfeed",
            "cr\rhere",
            "ünï😀",
        ] {
            for attr in [false, true] {
                let mut escaped = String::new();
                push_escaped(&mut escaped, s, attr);
                assert_eq!(decode(&escaped, attr).unwrap(), s, "{s:?} attr={attr}");
            }
        }
    }

    #[test]
    fn ncname_is_conservative() {
        assert!(is_ncname("FrEduVecteur"));
        assert!(is_ncname("_a.b-c1"));
        for bad in ["", "1a", "a b", "a:b", "é", "xmlFoo", "-a"] {
            assert!(!is_ncname(bad), "{bad:?}");
        }
    }
}
