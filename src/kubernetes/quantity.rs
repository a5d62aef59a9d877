//! Kubernetes resource quantities (`"1Gi"`, `"500M"`, `"10"`), as used by
//! LimitRanges and ResourceQuotas.
//!
//! Pure logic, no I/O. Values are non-negative integers; a fractional result
//! (`"1.5"`, `"500m"`) is rounded up, as `Quantity.Value()` does.

/// How a quantity is written: binary suffixes (`Ki`, `Mi`, …) or decimal ones
/// (`k`, `M`, …, plain numbers, exponents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    BinarySi,
    DecimalSi,
}

/// A parsed quantity: its value and the format it was written in (which
/// [`Quantity::canonical`] keeps, as the apiserver does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantity {
    pub value: u128,
    pub format: Format,
}

impl Quantity {
    /// Parse a quantity string; `None` if malformed, negative or too large.
    pub fn parse(s: &str) -> Option<Quantity> {
        parse_with_format(s).map(|(value, format)| Quantity { value, format })
    }

    /// The canonical string of the value in this quantity's format (`"1Gi"`, `"10"`, `"1500"`).
    pub fn canonical(&self) -> String {
        format_quantity(self.value, self.format)
    }
}

/// Parse a Kubernetes quantity string into its integer value (rounded up).
///
/// Accepts an optional `+`, digits with an optional fraction, and one suffix:
/// none, decimal SI (`m`, `k`, `M`, `G`, `T`, `P`, `E`), binary SI (`Ki`, `Mi`,
/// `Gi`, `Ti`, `Pi`, `Ei`) or a decimal exponent (`e3`, `E6`).
pub fn parse_quantity(s: &str) -> Option<u128> {
    parse_with_format(s).map(|(v, _)| v)
}

fn parse_with_format(s: &str) -> Option<(u128, Format)> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(num_end);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.contains('.') {
        return None;
    }
    // Multiplier as (numerator base, exponent, divisor exponent of 10).
    let (mult, div_pow10, format): (u128, u32, Format) = match suffix {
        "" => (1, 0, Format::DecimalSi),
        "m" => (1, 3, Format::DecimalSi),
        "k" => (1_000, 0, Format::DecimalSi),
        "M" => (1_000_000, 0, Format::DecimalSi),
        "G" => (1_000_000_000, 0, Format::DecimalSi),
        "T" => (1_000_000_000_000, 0, Format::DecimalSi),
        "P" => (1_000_000_000_000_000, 0, Format::DecimalSi),
        "E" => (1_000_000_000_000_000_000, 0, Format::DecimalSi),
        "Ki" => (1 << 10, 0, Format::BinarySi),
        "Mi" => (1 << 20, 0, Format::BinarySi),
        "Gi" => (1 << 30, 0, Format::BinarySi),
        "Ti" => (1 << 40, 0, Format::BinarySi),
        "Pi" => (1 << 50, 0, Format::BinarySi),
        "Ei" => (1 << 60, 0, Format::BinarySi),
        other => {
            let exp = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            let exp = exp.strip_prefix('+').unwrap_or(exp);
            if exp.is_empty() || !exp.bytes().all(|b| b.is_ascii_digit()) || exp.len() > 2 {
                return None;
            }
            let e: u32 = exp.parse().ok()?;
            (10u128.checked_pow(e)?, 0, Format::DecimalSi)
        }
    };
    // value = (int_part . frac_part) * mult / 10^div_pow10, rounded up.
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mantissa: u128 = if digits.is_empty() {
        0
    } else {
        if digits.len() > 38 {
            return None;
        }
        digits.parse().ok()?
    };
    let scale = 10u128.checked_pow(
        u32::try_from(frac_part.len())
            .ok()?
            .checked_add(div_pow10)?,
    )?;
    let product = mantissa.checked_mul(mult)?;
    let value = product.div_ceil(scale);
    Some((value, format))
}

/// Canonical string of `value` as the apiserver prints a quantity of `format`:
/// the largest suffix that divides the value exactly (`1073741824` binary →
/// `"1Gi"`, `1500` → `"1500"`, `2000` decimal → `"2k"`). Binary values below
/// 1024 print as decimal.
pub fn format_quantity(value: u128, format: Format) -> String {
    let format = if format == Format::BinarySi && value < 1024 {
        Format::DecimalSi
    } else {
        format
    };
    if value == 0 {
        return "0".to_string();
    }
    let (base, suffixes): (u128, &[&str]) = match format {
        Format::BinarySi => (1024, &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]),
        Format::DecimalSi => (1000, &["", "k", "M", "G", "T", "P", "E"]),
    };
    let mut v = value;
    let mut i = 0;
    while i + 1 < suffixes.len() && v % base == 0 {
        v /= base;
        i += 1;
    }
    format!("{v}{}", suffixes[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_integers() {
        assert_eq!(parse_quantity("0"), Some(0));
        assert_eq!(parse_quantity("10"), Some(10));
        assert_eq!(parse_quantity("+7"), Some(7));
        assert_eq!(parse_quantity("007"), Some(7));
        assert_eq!(parse_quantity("1234567890123"), Some(1_234_567_890_123));
    }

    #[test]
    fn suffixes() {
        assert_eq!(parse_quantity("1k"), Some(1_000));
        assert_eq!(parse_quantity("2M"), Some(2_000_000));
        assert_eq!(parse_quantity("3G"), Some(3_000_000_000));
        assert_eq!(parse_quantity("4T"), Some(4_000_000_000_000));
        assert_eq!(parse_quantity("1Ki"), Some(1024));
        assert_eq!(parse_quantity("1Mi"), Some(1 << 20));
        assert_eq!(parse_quantity("1Gi"), Some(1 << 30));
        assert_eq!(parse_quantity("10Gi"), Some(10 << 30));
        assert_eq!(parse_quantity("2Ti"), Some(2 << 40));
        assert_eq!(parse_quantity("1Pi"), Some(1 << 50));
        assert_eq!(parse_quantity("1E"), Some(1_000_000_000_000_000_000));
        assert_eq!(parse_quantity("1e3"), Some(1_000));
        assert_eq!(parse_quantity("5E2"), Some(500));
    }

    #[test]
    fn fractions_round_up() {
        assert_eq!(parse_quantity("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_quantity("0.5"), Some(1));
        assert_eq!(parse_quantity(".5k"), Some(500));
        assert_eq!(parse_quantity("1.k"), Some(1000));
        assert_eq!(parse_quantity("500m"), Some(1));
        assert_eq!(parse_quantity("2000m"), Some(2));
        assert_eq!(parse_quantity("0m"), Some(0));
    }

    #[test]
    fn malformed() {
        for bad in [
            "", " ", "Gi", "1 Gi", "1gi", "1KI", "-1", "1.2.3", ".", "1x", "1Gi ", "1ee3", "1e",
            "1e999", "abc", "1.5.Gi",
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad:?}");
        }
        // Overflow.
        assert_eq!(
            parse_quantity("999999999999999999999999999999999999999999"),
            None
        );
        assert_eq!(
            parse_quantity("340282366920938463463374607431768211455Ei"),
            None
        );
    }

    #[test]
    fn canonical_format() {
        let c = |s: &str| Quantity::parse(s).map(|q| q.canonical());
        assert_eq!(c("1Gi").as_deref(), Some("1Gi"));
        assert_eq!(c("1024Mi").as_deref(), Some("1Gi"));
        assert_eq!(c("1536Mi").as_deref(), Some("1536Mi"));
        assert_eq!(c("10").as_deref(), Some("10"));
        assert_eq!(c("1000").as_deref(), Some("1k"));
        assert_eq!(c("1500").as_deref(), Some("1500"));
        assert_eq!(c("1G").as_deref(), Some("1G"));
        assert_eq!(c("0Gi").as_deref(), Some("0"));
        assert_eq!(format_quantity(2_000_000, Format::BinarySi), "2000000");
        assert_eq!(format_quantity(3072, Format::BinarySi), "3Ki");
        assert_eq!(format_quantity(512, Format::BinarySi), "512");
        assert_eq!(format_quantity(1000, Format::BinarySi), "1k");
    }
}
