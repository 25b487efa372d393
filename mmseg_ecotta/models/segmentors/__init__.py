from .meta_encoder_decoder import (MetaEncoderDecoder, freeze_original_network,
                                   is_meta_name)

__all__ = ['MetaEncoderDecoder', 'freeze_original_network', 'is_meta_name']
