//! The PDF of a finalized document: A4, Helvetica (one of the standard
//! fonts every reader has, so nothing is embedded), text in WinAnsi
//! encoding (characters outside it print as `?`), as many pages as the
//! lines need. No creation date or random id is written, so rendering the
//! same document twice gives the same bytes.

use anchor_domain::{Currency, InvoiceKind, Party};
use anchor_store::invoices::Invoice;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use rust_decimal::Decimal;

use crate::{Fixed, NotFinalized, day, fixed};

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
/// Lines of the table on a page (the first page has the header above).
const ROWS_FIRST: usize = 36;
const ROWS_NEXT: usize = 50;
/// Characters of a description per printed row, and rows per line at most.
const WRAP: usize = 46;
const MAX_ROWS_PER_LINE: usize = 4;

/// The PDF of a finalized `invoice`.
pub fn render(invoice: &Invoice) -> Result<Vec<u8>, NotFinalized> {
    let fixed = fixed(invoice)?;
    let currency = invoice.currency;
    // The table's rows: each line's description wrapped, its figures on the
    // first row.
    let mut rows: Vec<Row> = Vec::new();
    for line in &invoice.lines {
        let wrapped = wrap(line.description.as_str(), WRAP, MAX_ROWS_PER_LINE);
        for (i, text) in wrapped.into_iter().enumerate() {
            let figures = (i == 0).then(|| {
                [
                    plain(line.quantity),
                    line.unit_code.word().to_owned(),
                    price(currency, line.unit_price),
                    if line.discount_percent.is_zero() {
                        String::new()
                    } else {
                        format!("{}%", plain(line.discount_percent))
                    },
                    format!("{}% {}", plain(line.tax_rate), line.tax_category),
                    amount(currency, line.net),
                ]
            });
            rows.push(Row { text, figures });
        }
    }
    // Pages of whole lines: a line's rows never part across pages.
    let mut pages: Vec<&[Row]> = Vec::new();
    let (mut start, mut capacity) = (0, ROWS_FIRST);
    let mut at = 0;
    while at < rows.len() {
        let line_end = (at + 1..rows.len()).find(|&i| rows[i].figures.is_some()).unwrap_or(rows.len());
        if line_end - start > capacity && at > start {
            pages.push(&rows[start..at]);
            (start, capacity) = (at, ROWS_NEXT);
        }
        at = line_end;
    }
    pages.push(&rows[start..]);
    // The totals need room: they go on a page of their own when the last
    // page is nearly full.
    let last_capacity = if pages.len() == 1 { ROWS_FIRST } else { ROWS_NEXT };
    let summary_rows = invoice.tax_groups.len() + 6;
    let totals_apart = pages.last().map_or(0, |p| p.len()) + summary_rows > last_capacity + 8;
    let page_count = pages.len() + usize::from(totals_apart);

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let (regular, bold) = (Ref::new(3), Ref::new(4));
    let first_page = 5;
    pdf.catalog(catalog).pages(tree);
    let kids: Vec<Ref> = (0..page_count).map(|i| Ref::new(first_page + 2 * i as i32)).collect();
    pdf.pages(tree).kids(kids.iter().copied()).count(page_count as i32);
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));

    for index in 0..page_count {
        let mut c = Content::new();
        let mut y = HEIGHT - MARGIN;
        if index == 0 {
            y = header(&mut c, invoice, &fixed, y);
        }
        let rows = pages.get(index).copied().unwrap_or_default();
        if !rows.is_empty() || index == 0 {
            y = table(&mut c, rows, currency, y);
        }
        if index == page_count - 1 {
            summary(&mut c, invoice, &fixed, y - 10.0);
        }
        footer(&mut c, &fixed, index + 1, page_count);
        let page_id = Ref::new(first_page + 2 * index as i32);
        let content_id = Ref::new(first_page + 2 * index as i32 + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT)).parent(tree).contents(content_id);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.finish();
        page.finish();
        pdf.stream(content_id, &c.finish());
    }
    Ok(pdf.finish())
}

struct Row {
    text: String,
    /// Quantity, unit, unit price, discount, tax, net: on a line's first row.
    figures: Option<[String; 6]>,
}

/// Right edges of the figure columns, then the description's left edge.
const COLUMNS: [f32; 6] = [330.0, 360.0, 418.0, 455.0, 495.0, WIDTH - MARGIN];

fn header(c: &mut Content, invoice: &Invoice, fixed: &Fixed<'_>, top: f32) -> f32 {
    let title = format!("{} {}", invoice.kind.title(), fixed.number);
    text(c, BOLD, 20.0, MARGIN, top - 16.0, &title);
    let mut y = top - 48.0;
    let seller_bottom = party(c, "From", fixed.seller, MARGIN, y);
    let buyer_bottom = party(c, "Bill to", fixed.buyer, 230.0, y);
    let mut facts: Vec<(&str, String)> = vec![
        ("Issued", day(fixed.issued_on)),
        ("Due", day(fixed.due_on)),
        ("Currency", invoice.currency.code().to_owned()),
    ];
    if let Some(po) = &invoice.purchase_order {
        facts.push(("Purchase order", po.as_str().to_owned()));
    }
    if let (InvoiceKind::CreditNote, Some(corrected)) = (invoice.kind, &invoice.corrects_number) {
        facts.push(("Corrects invoice", corrected.clone()));
    }
    let mut facts_y = y;
    for (label, value) in &facts {
        text(c, BOLD, 9.0, 400.0, facts_y, label);
        text(c, REGULAR, 9.0, 482.0, facts_y, value);
        facts_y -= 13.0;
    }
    y = seller_bottom.min(buyer_bottom).min(facts_y) - 18.0;
    y
}

/// A party's block; the y below it.
fn party(c: &mut Content, label: &str, party: &Party, x: f32, top: f32) -> f32 {
    let mut y = top;
    text(c, BOLD, 9.0, x, y, label);
    y -= 13.0;
    text(c, BOLD, 9.0, x, y, party.name.as_str());
    y -= 12.0;
    let address = &party.address;
    let postal = [address.postal_code.as_ref().map(|p| p.as_str().to_owned()), Some(address.city.as_str().to_owned())];
    let city: Vec<String> = postal.into_iter().flatten().collect();
    let mut lines: Vec<String> = vec![address.line1.as_str().to_owned()];
    lines.extend(address.line2.as_ref().map(|l| l.as_str().to_owned()));
    lines.push(city.join(" "));
    lines.extend(address.region.as_ref().map(|r| r.as_str().to_owned()));
    lines.push(address.country.as_str().to_owned());
    if let Some(vat) = &party.vat_id {
        lines.push(format!("VAT {}", vat.as_str()));
    }
    for line in lines {
        text(c, REGULAR, 9.0, x, y, &line);
        y -= 12.0;
    }
    y
}

/// The lines' table from `top`; the y below it.
fn table(c: &mut Content, rows: &[Row], currency: Currency, top: f32) -> f32 {
    let heads = ["Qty", "Unit", "Unit price", "Disc.", "Tax", &format!("Net {}", currency.code())];
    let mut y = top;
    c.set_fill_gray(0.93);
    c.rect(MARGIN - 4.0, y - 5.0, WIDTH - 2.0 * MARGIN + 8.0, 17.0);
    c.fill_nonzero();
    c.set_fill_gray(0.0);
    text(c, BOLD, 8.5, MARGIN, y, "Description");
    for (head, right) in heads.iter().zip(COLUMNS) {
        text_right(c, BOLD, 8.5, right, y, head);
    }
    y -= 18.0;
    for row in rows {
        text(c, REGULAR, 8.5, MARGIN, y, &row.text);
        if let Some(figures) = &row.figures {
            for (figure, right) in figures.iter().zip(COLUMNS) {
                text_right(c, REGULAR, 8.5, right, y, figure);
            }
        }
        y -= 13.0;
    }
    c.set_stroke_gray(0.6);
    c.set_line_width(0.5);
    c.move_to(MARGIN - 4.0, y + 6.0);
    c.line_to(WIDTH - MARGIN + 4.0, y + 6.0);
    c.stroke();
    y
}

fn summary(c: &mut Content, invoice: &Invoice, fixed: &Fixed<'_>, top: f32) {
    let currency = invoice.currency;
    let (label_x, right) = (330.0, WIDTH - MARGIN);
    let mut y = top;
    for group in &invoice.tax_groups {
        let label = format!("Tax {} {}% on {}", group.category, plain(group.rate), amount(currency, group.taxable));
        text(c, REGULAR, 9.0, label_x, y, &label);
        text_right(c, REGULAR, 9.0, right, y, &amount(currency, group.tax));
        y -= 13.0;
    }
    y -= 4.0;
    text(c, REGULAR, 9.0, label_x, y, "Total excluding tax");
    text_right(c, REGULAR, 9.0, right, y, &amount(currency, invoice.net));
    y -= 13.0;
    text(c, REGULAR, 9.0, label_x, y, "Tax");
    text_right(c, REGULAR, 9.0, right, y, &amount(currency, invoice.tax));
    y -= 16.0;
    let total = match invoice.kind {
        InvoiceKind::Invoice => "Total due",
        InvoiceKind::CreditNote => "Total credited",
    };
    text(c, BOLD, 11.0, label_x, y, &format!("{total} ({})", currency.code()));
    text_right(c, BOLD, 11.0, right, y, &amount(currency, invoice.gross));
    y -= 28.0;
    let mut notes: Vec<String> = Vec::new();
    let mut reasons: Vec<&str> = invoice.lines.iter().filter_map(|l| l.exemption_reason.as_deref()).collect::<Vec<_>>();
    reasons.dedup();
    for reason in reasons {
        notes.push(format!("Tax: {reason}"));
    }
    if invoice.kind == InvoiceKind::Invoice {
        let mut pay = format!("Please pay {} by {}", currency.format(invoice.gross), day(fixed.due_on));
        if let Some(iban) = &invoice.payee_iban {
            pay.push_str(&format!(" to IBAN {}", spaced_iban(iban)));
        }
        pay.push_str(&format!(", quoting {}.", fixed.number));
        notes.push(pay);
    }
    if let Some(note) = &invoice.note {
        notes.extend(note.as_str().lines().map(str::to_owned));
    }
    for note in notes {
        for row in wrap(&note, 100, 6) {
            text(c, REGULAR, 9.0, MARGIN, y, &row);
            y -= 12.0;
        }
    }
}

fn footer(c: &mut Content, fixed: &Fixed<'_>, page: usize, pages: usize) {
    let left = format!("{} · {}", fixed.seller.name.as_str(), fixed.number);
    text(c, REGULAR, 7.5, MARGIN, 30.0, &left);
    text_right(c, REGULAR, 7.5, WIDTH - MARGIN, 30.0, &format!("Page {page} of {pages}"));
}

fn text(c: &mut Content, font: Name<'_>, size: f32, x: f32, y: f32, s: &str) {
    c.begin_text();
    c.set_font(font, size);
    c.next_line(x, y);
    c.show(Str(&win_ansi(s)));
    c.end_text();
}

fn text_right(c: &mut Content, font: Name<'_>, size: f32, right: f32, y: f32, s: &str) {
    text(c, font, size, right - width(s, size, font == BOLD), y, s);
}

/// The width of `s` in Helvetica (AFM widths, in thousandths of the size)
/// for what the figure columns print; other characters count as a digit.
fn width(s: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = s
        .chars()
        .map(|ch| match ch {
            '0'..='9' => 556,
            '.' | ',' | ' ' => 278,
            '-' => 333,
            '%' => 889,
            'i' | 'l' => 222,
            'I' => 278,
            'c' | 's' | 'k' | 'v' | 'x' | 'y' | 'z' => 500,
            't' | 'f' => 278,
            'r' => 333,
            'm' => 833,
            'w' => 722,
            'A'..='Z' => 667,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0 * if bold { 1.05 } else { 1.0 }
}

/// `s` in WinAnsi (Windows-1252); what it cannot say becomes `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|ch| match ch {
            ' '..='~' => ch as u8,
            '\u{a0}'..='\u{ff}' => ch as u32 as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '™' => 0x99,
            'Š' => 0x8a,
            'š' => 0x9a,
            'Œ' => 0x8c,
            'œ' => 0x9c,
            'Ž' => 0x8e,
            'ž' => 0x9e,
            'Ÿ' => 0x9f,
            '\t' => b' ',
            _ => b'?',
        })
        .collect()
}

/// Words of `s` in rows of at most `width` characters (a longer word is
/// cut), at most `max` rows (the last ends with `...` when text is left).
fn wrap(s: &str, width: usize, max: usize) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    for word in s.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            if !row.is_empty() {
                rows.push(std::mem::take(&mut row));
            }
            rows.push(head);
        }
        if !row.is_empty() && row.chars().count() + 1 + word.chars().count() > width {
            rows.push(std::mem::take(&mut row));
        }
        if !row.is_empty() {
            row.push(' ');
        }
        row.push_str(&word);
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    if rows.len() > max {
        rows.truncate(max);
        let last = rows.last_mut().expect("max > 0");
        let kept: String = last.chars().take(width.saturating_sub(3)).collect();
        *last = format!("{kept}...");
    }
    rows
}

/// A decimal without trailing zeros: `1.50` as `1.5`, `19.00` as `19`.
fn plain(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A unit price: the currency's decimals, or more when it has more.
fn price(currency: Currency, d: Decimal) -> String {
    if d.normalize().scale() <= currency.decimals() { amount(currency, d) } else { plain(d) }
}

/// An amount with the currency's decimals and thousands separators.
fn amount(currency: Currency, d: Decimal) -> String {
    let formatted = currency.format(d);
    formatted.strip_suffix(currency.code()).map_or(formatted.clone(), |s| s.trim_end().to_owned())
}

/// `DE89370400440532013000` as `DE89 3704 0044 0532 0130 00`.
fn spaced_iban(iban: &str) -> String {
    iban.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_and_bounds_rows() {
        assert_eq!(wrap("Remote support for the printer", 12, 4), ["Remote", "support for", "the printer"]);
        assert_eq!(wrap("", 10, 3), [""]);
        assert_eq!(wrap("abcdefghijkl", 5, 4), ["abcde", "fghij", "kl"]);
        let long = wrap(&"word ".repeat(100), 20, 2);
        assert_eq!(long.len(), 2);
        assert!(long[1].ends_with("..."));
    }

    #[test]
    fn text_outside_win_ansi_prints_as_a_question_mark() {
        assert_eq!(win_ansi("Café 10 €"), b"Caf\xe9 10 \x80");
        assert_eq!(win_ansi("東京"), b"??");
        assert_eq!(spaced_iban("DE89370400440532013000"), "DE89 3704 0044 0532 0130 00");
    }
}
