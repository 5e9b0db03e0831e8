//! `png-colours FILE.png [--min-colours N] [--min-ink F]`: checks that a screenshot is not
//! blank. Prints the image size, the number of distinct colours and the fraction of pixels
//! that are not the background (the most common colour); exits 1 when there are fewer than
//! `N` colours (default 16) or less than `F` of the pixels differ from the background
//! (default 0.01), 2 on bad input. For CI's headless-browser check of report.html, with no
//! image tool on the machine.

use std::collections::BTreeMap;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let (mut min_colours, mut min_ink) = (16usize, 0.01f64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--min-colours" => {
                min_colours = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--min-colours: expected a whole number")?;
            }
            "--min-ink" => {
                min_ink = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--min-ink: expected a fraction such as 0.01")?;
            }
            _ if file.is_none() => file = Some(a),
            _ => return Err(format!("unexpected argument `{a}`")),
        }
    }
    let file = file.ok_or("usage: png-colours FILE.png [--min-colours N] [--min-ink F]")?;
    let f = std::fs::File::open(&file).map_err(|e| format!("{file}: {e}"))?;
    let mut decoder = png::Decoder::new(f);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("{file}: not a PNG: {e}"))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("{file}: {e}"))?;
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let mut counts: BTreeMap<&[u8], u64> = BTreeMap::new();
    for px in pixels.chunks_exact(channels) {
        *counts.entry(px).or_default() += 1;
    }
    let total = u64::from(info.width) * u64::from(info.height);
    let background = counts.values().copied().max().unwrap_or(0);
    let ink = if total == 0 {
        0.0
    } else {
        1.0 - background as f64 / total as f64
    };
    println!(
        "{file}: {}x{} pixels, {} distinct colours, {:.1}% not background",
        info.width,
        info.height,
        counts.len(),
        ink * 100.0
    );
    let ok = counts.len() >= min_colours && ink >= min_ink;
    if !ok {
        eprintln!(
            "{file}: looks blank (wanted at least {min_colours} colours and {:.1}% ink)",
            min_ink * 100.0
        );
    }
    Ok(ok)
}
