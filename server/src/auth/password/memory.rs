//! Argon2's working memory, mapped from the kernel instead of taken from the allocator.
//!
//! argon2 on its own allocates its blocks as a `Vec` per hash. glibc serves a 19 MiB request with `mmap`
//! only until the first such block is freed: the mmap threshold then rises to that size, later blocks come
//! from the arenas of whichever blocking threads ran the hashes, and freed blocks stay in those arenas. A
//! burst of logins left the process gigabytes larger for good. A mapping of our own is returned to the
//! system exactly when it is dropped.

use argon2::Block;

/// Exclusively owned memory for `blocks` argon2 blocks, zero-filled when mapped.
pub struct ArgonMemory {
    #[cfg(unix)]
    start: std::ptr::NonNull<Block>,
    #[cfg(not(unix))]
    vec: Vec<Block>,
    blocks: usize,
}

// SAFETY: the mapping is owned by this value alone, like the heap memory of a `Box<[Block]>`.
#[cfg(unix)]
unsafe impl Send for ArgonMemory {}

impl ArgonMemory {
    #[cfg(unix)]
    pub fn map(blocks: usize) -> std::io::Result<ArgonMemory> {
        let len = bytes(blocks)?;
        // SAFETY: a new private anonymous mapping at an address the kernel picks aliases nothing.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let start = std::ptr::NonNull::new(start.cast()).expect("a successful mmap is never at address 0");
        Ok(ArgonMemory { start, blocks })
    }

    #[cfg(not(unix))]
    pub fn map(blocks: usize) -> std::io::Result<ArgonMemory> {
        bytes(blocks)?;
        Ok(ArgonMemory { vec: vec![Block::new(); blocks], blocks })
    }

    pub fn blocks(&self) -> usize {
        self.blocks
    }

    #[cfg(unix)]
    pub fn as_blocks_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping holds `blocks` blocks and lives as long as `self`; it is page-aligned (a block
        // needs 64 bytes), zero-filled (any bytes are a valid block), and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.blocks) }
    }

    #[cfg(not(unix))]
    pub fn as_blocks_mut(&mut self) -> &mut [Block] {
        &mut self.vec
    }
}

#[cfg(unix)]
impl Drop for ArgonMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` made; no borrow of it outlives `self`.
        unsafe { libc::munmap(self.start.as_ptr().cast(), self.blocks * Block::SIZE) };
    }
}

fn bytes(blocks: usize) -> std::io::Result<usize> {
    blocks
        .checked_mul(Block::SIZE)
        .filter(|&len| len > 0)
        .ok_or_else(|| std::io::Error::other(format!("cannot map {blocks} argon2 blocks")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_memory_starts_zeroed_and_is_writable_to_its_last_block() {
        let mut memory = ArgonMemory::map(8).unwrap();
        let blocks = memory.as_blocks_mut();
        assert_eq!(blocks.len(), 8);
        assert!(blocks.iter().all(|b| b.as_ref().iter().all(|&w| w == 0)));
        blocks[7].as_mut()[127] = u64::MAX;
        assert_eq!(memory.as_blocks_mut()[7].as_ref()[127], u64::MAX);
    }
}
